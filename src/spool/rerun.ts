// A job that must not run twice at once, yet must not miss a request: the spool's clean-up
// (spool.ts collect()) and the checkpoints' group write (checkpoints.ts write()).
//
// Invariants
// - A request while no run is under way starts one; a request while one is under way makes it
//   make exactly one more pass after the current one, and gets the promise of the whole run.
// - The "under way" mark is cleared inside the run, right after its last pass: cleared a
//   microtask later (a .finally() outside the run), a request in between would be folded into
//   a run that no longer looks.

export class Rerun {
  private running: Promise<void> | null = null
  private again = false

  /** `pass`: one pass of the job; `more`: whether a pass asked for meanwhile has anything to do. */
  constructor (private readonly pass: () => Promise<void>, private readonly more: () => boolean = () => true) {}

  run(): Promise<void> {
    if (this.running) {
      this.again = true
      return this.running
    }
    this.running = (async () => {
      try {
        do {
          this.again = false
          await this.pass()
        } while (this.again && this.more())
      } finally {
        this.running = null
      }
    })()
    return this.running
  }
}
