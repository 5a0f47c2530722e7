/**
 * A server process the test set-up owns (Elasticsearch, OpenSearch, Kafka): started in its own
 * process group, ready when a probe says so, stopped gracefully or killed with SIGKILL (a crash)
 * and started again on the same data, destroyed with its files. Start/stop/kill/destroy are
 * queued, so a test's kill→start, or a control request racing the teardown, is never reordered.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { delay, signalProcess } from './commands.js';

export interface ProcessSpec {
  /** In messages: "Elasticsearch 8.19.7 exited with code 1 before becoming ready". */
  readonly name: string;
  /** In log lines: "[<tag>-harness] ready after 900 ms". */
  readonly tag: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** true once the server answers as ready; false, or why not (kept for the timeout's message). */
  readonly ready: () => Promise<boolean | string>;
  readonly startupTimeoutMs: number;
  readonly log: (line: string) => void;
  /** Appended to a start failure's message (e.g. where the server's own logs are). */
  readonly failureHint?: string;
}

const STOP_GRACE_MS = 20_000;
const TAIL_LINES = 300;
const ERROR_TAIL_LINES = 80;

export class ManagedProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private queue: Promise<unknown> = Promise.resolve();
  private tail: string[] = [];
  private destroyed = false;
  private readonly killOnExit = (): void => {
    if (this.child?.pid !== undefined) signalProcess(-this.child.pid, 'SIGKILL');
  };

  constructor(private readonly spec: ProcessSpec) {}

  /** (Re)starts on the same data and ports; resolves once ready. */
  start(): Promise<void> {
    return this.enqueue(() => this.doStart());
  }

  /** SIGTERM to the launcher, SIGKILL to its group after a grace period; data is kept. */
  stop(): Promise<void> {
    return this.enqueue(() => this.doStop(false));
  }

  /** SIGKILL at once: the crash of the machine as far as the server can tell. */
  kill(): Promise<void> {
    return this.enqueue(() => this.doStop(true));
  }

  /** Stops it for good, then `cleanup` (remove its files); a later start fails. */
  destroy(cleanup: () => Promise<void>): Promise<void> {
    return this.enqueue(async () => {
      await this.doStop(false);
      this.destroyed = true;
      await cleanup();
    });
  }

  private enqueue(op: () => Promise<void>): Promise<void> {
    const next = this.queue.then(op, op);
    this.queue = next.catch(() => {});
    return next;
  }

  private async doStart(): Promise<void> {
    if (this.destroyed) throw new Error(`${this.spec.name} was destroyed`);
    if (this.child) return;
    const { name, tag, command, args, env, cwd, log } = this.spec;
    this.tail = [];
    const started = Date.now();
    // Own process group, so a launcher and the server it forks are killed together.
    const child = spawn(command, [...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.child = child;
    let exitInfo: string | undefined;
    let spawnError: Error | undefined;
    this.exited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        spawnError = err;
        exitInfo = `failed to spawn ${command}: ${err.message}`;
        resolve();
      });
      child.once('exit', (code, signal) => {
        exitInfo = signal ? `killed by ${signal}` : `exited with code ${code}`;
        resolve();
      });
    }).then(() => {
      if (this.child === child) this.child = undefined;
      process.removeListener('exit', this.killOnExit);
    });
    process.on('exit', this.killOnExit);
    this.captureOutput(child);
    let lastProbe = 'no response yet';
    while (Date.now() - started < this.spec.startupTimeoutMs) {
      if (exitInfo !== undefined) {
        // The launcher is gone; make sure nothing it forked survives it.
        if (child.pid !== undefined) signalProcess(-child.pid, 'SIGKILL');
        throw new Error(`${name} ${exitInfo} before becoming ready.${this.describeFailure()}`, spawnError ? { cause: spawnError } : undefined);
      }
      const probe = await this.spec.ready().catch((err: unknown) => (err instanceof Error ? err.message : String(err)));
      if (probe === true) {
        log(`[${tag}-harness] ${name} ready after ${Date.now() - started} ms`);
        return;
      }
      if (typeof probe === 'string') lastProbe = probe;
      await delay(250);
    }
    await this.doStop(true);
    throw new Error(`${name} did not become ready within ${this.spec.startupTimeoutMs / 1000} s (last probe: ${lastProbe}).${this.describeFailure()}`);
  }

  private async doStop(kill: boolean): Promise<void> {
    const child = this.child;
    if (!child || child.pid === undefined) {
      await this.exited;
      return;
    }
    if (!kill) {
      // SIGTERM only the launcher: it shuts its server down gracefully and waits for it.
      signalProcess(child.pid, 'SIGTERM');
      const timedOut = await Promise.race([this.exited.then(() => false), delay(STOP_GRACE_MS).then(() => true)]);
      if (timedOut) this.spec.log(`[${this.spec.tag}-harness] ${this.spec.name} did not stop within ${STOP_GRACE_MS / 1000} s, sending SIGKILL`);
    }
    // Also after a clean exit: a server orphaned by a crashed launcher would keep its data locked.
    signalProcess(-child.pid, 'SIGKILL');
    await this.exited;
  }

  /** Every line to the log, the last ones kept for a start failure's message; a line split across chunks stays one. */
  private captureOutput(child: ChildProcess): void {
    const onLine = (line: string): void => {
      this.tail.push(line);
      if (this.tail.length > TAIL_LINES) this.tail.shift();
      this.spec.log(line);
    };
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      let buffered = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          onLine(buffered.slice(0, nl).replace(/\r$/, ''));
          buffered = buffered.slice(nl + 1);
        }
      });
      stream.on('end', () => {
        if (buffered) onLine(buffered);
        buffered = '';
      });
    }
  }

  private describeFailure(): string {
    const tail = this.tail.slice(-ERROR_TAIL_LINES);
    return (
      `${this.spec.failureHint ? `\n${this.spec.failureHint}` : ''}\n--- last ${tail.length} lines of ${this.spec.name}'s output ---\n` +
      (tail.length ? tail.join('\n') : '(no output)') +
      `\n--- end of ${this.spec.name}'s output ---`
    );
  }
}
