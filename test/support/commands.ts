/**
 * Small process and file helpers the server harnesses share (Elasticsearch, OpenSearch, Kafka);
 * a leaf module, so the harnesses and server-setup.ts import it without importing each other.
 */
import { spawn } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';

export async function javaMajorOf(home: string): Promise<number | undefined> {
  if (!(await isExecutable(path.join(home, 'bin', 'java')))) return undefined;
  const release = await readFile(path.join(home, 'release'), 'utf8').catch(() => undefined);
  const match = release?.match(/^JAVA_VERSION="([^"]+)"/m);
  if (!match) return undefined;
  const parts = match[1]!.split('.');
  const first = Number(parts[0]);
  return first === 1 ? Number(parts[1]) : first;
}

export async function findCommand(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

export async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function run(command: string, args: string[], options: { cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export async function runChecked(command: string, args: string[], options: { cwd?: string; what: string }): Promise<void> {
  const r = await run(command, args, options);
  if (r.code !== 0) {
    const output = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-40).join('\n');
    throw new Error(`${options.what} failed (exit ${r.code}):\n${output}`);
  }
}

export function signalProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
