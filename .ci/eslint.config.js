// ESLint flat config: correctness rules only. No formatting or style rule (quotes, semicolons,
// indentation, spacing): the code has its own consistent style, several people edit it at once,
// and a reformat would only make their merges hard. `npm run lint` runs it; `npm test` runs lint first.
import tseslint from 'typescript-eslint'
import n from 'eslint-plugin-n'

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', '.bench-results/**'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommended],
    plugins: { n },
    rules: {
      // node:fs, not fs: a builtin can never be shadowed by a package of the same name.
      'n/prefer-node-protocol': 'error'
    }
  }
)
