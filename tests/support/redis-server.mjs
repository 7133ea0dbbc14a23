// RedisServer: a redis-server child process for the Node test scripts (tests/browser,
// tests/node). It listens on a free loopback port, keeps that port when started again (so a
// client's URL stays valid across an outage), persists nothing, and is stopped by its PID.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { freePort } from './free-port.mjs';

export class RedisServer {
  // `executable`: the redis-server binary. `onLine(line)` sees its output (for a failure's log).
  constructor(executable, { onLine = () => {} } = {}) {
    this.executable = executable;
    this.onLine = onLine;
    this.port = 0;
    this.child = null;
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  running() {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  // Resolves once the server accepts connections; throws when it exits or takes too long.
  async start(timeoutMs = 10000) {
    if (!this.port) this.port = await freePort();
    const child = spawn(this.executable, ['--port', String(this.port), '--bind', '127.0.0.1',
                                          '--save', '', '--appendonly', 'no'],
                        { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let timer;
    const ready = new Promise((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        this.onLine(line);
        if (/Ready to accept connections/.test(line)) resolve();
      });
      child.once('error', (err) => reject(new Error(`cannot start ${this.executable}: ${err.message}`)));
      child.once('exit', (code) => reject(new Error(`redis-server exited (code ${code}) before it was ready`)));
      timer = setTimeout(() => reject(new Error(`redis-server not ready in ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await ready;
    } finally {
      clearTimeout(timer);
    }
  }

  // SIGKILL (as a crash would) and wait for the exit.
  async stop() {
    if (!this.running()) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.kill();
    await exited;
  }

  // For exit handlers, which cannot wait.
  kill() {
    if (this.running()) {
      try { this.child.kill('SIGKILL'); } catch { /* already gone */ }
    }
  }
}
