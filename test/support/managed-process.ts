/**
 * A server process the test set-up owns (OpenSearch, Kafka): started in its own process group,
 * ready when a probe says so, stopped gracefully or killed with SIGKILL (a crash) and started
 * again on the same data. Start/stop/kill are queued, so a test's kill→start is never reordered.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { delay, signalProcess } from './elasticsearch.js';

export interface ProcessSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** Resolves true once the server answers as ready. */
  readonly ready: () => Promise<boolean>;
  readonly startupTimeoutMs: number;
  readonly log: (line: string) => void;
}

const STOP_GRACE_MS = 20_000;
const TAIL_LINES = 80;

export class ManagedProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private queue: Promise<unknown> = Promise.resolve();
  private tail: string[] = [];
  private readonly killOnExit = (): void => {
    if (this.child?.pid !== undefined) signalProcess(-this.child.pid, 'SIGKILL');
  };

  constructor(private readonly spec: ProcessSpec) {}

  start(): Promise<void> {
    return this.enqueue(() => this.doStart());
  }

  /** SIGTERM, SIGKILL after a grace period. */
  stop(): Promise<void> {
    return this.enqueue(() => this.doStop(false));
  }

  /** SIGKILL at once: the crash of the machine as far as the server can tell. */
  kill(): Promise<void> {
    return this.enqueue(() => this.doStop(true));
  }

  private enqueue(op: () => Promise<void>): Promise<void> {
    const next = this.queue.then(op, op);
    this.queue = next.catch(() => {});
    return next;
  }

  private async doStart(): Promise<void> {
    if (this.child) return;
    const { name, command, args, env, cwd, log } = this.spec;
    this.tail = [];
    const started = Date.now();
    const child = spawn(command, [...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.child = child;
    let exitInfo: string | undefined;
    this.exited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        exitInfo = `failed to spawn: ${err.message}`;
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
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8').on('data', (chunk: string) => {
        for (const line of chunk.split('\n')) {
          if (!line) continue;
          this.tail.push(line);
          if (this.tail.length > TAIL_LINES) this.tail.shift();
          log(line);
        }
      });
    }
    while (Date.now() - started < this.spec.startupTimeoutMs) {
      if (exitInfo !== undefined) throw new Error(`${name} ${exitInfo} before becoming ready.\n${this.tail.join('\n')}`);
      if (await this.spec.ready().catch(() => false)) {
        log(`[${name}-harness] ready after ${Date.now() - started} ms`);
        return;
      }
      await delay(250);
    }
    await this.doStop(true);
    throw new Error(`${name} did not become ready within ${this.spec.startupTimeoutMs / 1000} s.\n${this.tail.join('\n')}`);
  }

  private async doStop(kill: boolean): Promise<void> {
    const child = this.child;
    if (!child || child.pid === undefined) {
      await this.exited;
      return;
    }
    if (kill) {
      signalProcess(-child.pid, 'SIGKILL');
    } else {
      signalProcess(child.pid, 'SIGTERM');
      await Promise.race([this.exited, delay(STOP_GRACE_MS)]);
      signalProcess(-child.pid, 'SIGKILL');
    }
    await this.exited;
  }
}
