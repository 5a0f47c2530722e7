// ESLint flat config: correctness rules only (typescript-eslint's recommended set and
// n/prefer-node-protocol). No formatting or style rule (quotes, semicolons, indentation, spacing):
// the code has its own consistent style, several people edit it at once, and a reformat would only
// make their merges hard. `npm run lint` runs it; `npm test` runs it before the build.
// Not type-aware: that would need a full type-check per run, which `tsc` in the build already does.
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
      'n/prefer-node-protocol': 'error',
      // A `let` that a callback reads before its one assignment (a server handler that needs the
      // object created after it, a signal handler that needs the child spawned later) cannot be const.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // An interface's implementation names the parameters it ignores, with a leading underscore.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }]
    }
  },
  {
    // Tests read JSON answers and dead letters whose shape is what they assert on; `any` there is
    // the point, not a hole in the service's types (src/ keeps the rule).
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' }
  }
)
