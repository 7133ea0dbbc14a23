// Nginx: an nginx child process for the Node test scripts, in front of notify-demo the way
// docs/DEPLOYMENT.md says. One process (master_process off: no workers, no change of user),
// in the foreground, with its files in a temporary directory; listens on free loopback
// ports and is stopped by its PID.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort } from './free-port.mjs';

function accepts(port) {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Nginx {
  // `executable`: the nginx binary. `onLine(line)` sees its output (for a failure's log).
  constructor(executable, { onLine = () => {} } = {}) {
    this.executable = executable;
    this.onLine = onLine;
    this.child = null;
    this.dir = null;
    this.ports = [];
  }

  // `servers(ports)` returns the http block's upstreams and servers for `count` listening
  // ports. Resolves once every port accepts; tries new ports when nginx cannot bind them.
  async start(count, servers, timeoutMs = 10000) {
    this.dir = mkdtempSync(join(tmpdir(), 'notify-nginx-'));
    let lastError = null;
    for (let attempt = 0; attempt < 5; attempt++) {
      this.ports = [];
      for (let i = 0; i < count; i++) this.ports.push(await freePort());
      const temp = (name) => `${name}_temp_path ${join(this.dir, name)};`;
      writeFileSync(join(this.dir, 'nginx.conf'), [
        'daemon off;',
        'master_process off;',
        `pid ${join(this.dir, 'nginx.pid')};`,
        'error_log stderr notice;',
        'events { worker_connections 1024; }',
        'http {',
        '  access_log off;',
        `  ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp).join('\n  ')}`,
        servers(this.ports),
        '}',
        '',
      ].join('\n'));
      const child = spawn(this.executable, ['-p', this.dir, '-c', join(this.dir, 'nginx.conf'), '-e', 'stderr'],
                          { stdio: ['ignore', 'pipe', 'pipe'] });
      this.child = child;
      const output = [];
      for (const stream of [child.stdout, child.stderr]) {
        createInterface({ input: stream }).on('line', (line) => { output.push(line); this.onLine(line); });
      }
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.once('error', (err) => { lastError = err; });
      const deadline = Date.now() + timeoutMs;
      let up = false;
      while (!up && Date.now() < deadline && child.exitCode === null && !lastError) {
        up = (await Promise.all(this.ports.map(accepts))).every(Boolean);
        if (!up) await sleep(50);
      }
      if (up) return;
      if (lastError) throw new Error(`cannot start ${this.executable}: ${lastError.message}`);
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`nginx did not accept on ${this.ports.join(', ')} in ${timeoutMs} ms: ${output.join(' | ')}`);
      }
      await exited;
      lastError = null;
      if (!output.some((l) => /Address already in use/.test(l)))
        throw new Error(`nginx exited (code ${child.exitCode}): ${output.join(' | ')}`);
    }
    throw new Error('nginx: no free ports after 5 attempts');
  }

  // SIGTERM (a fast shutdown) and wait for the exit; SIGKILL after 3 s.
  async stop() {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }

  // For the exit handler of a test that is interrupted.
  kill() {
    if (this.child && this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}
