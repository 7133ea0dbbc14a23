// A self-signed certificate for 127.0.0.1, made for one test run with the openssl program
// (scripts/install-deps --test installs it), in a directory removed when the process exits.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** {cert, key}: the PEM files' paths. Throws with openssl's message when it fails. */
export function makeCertificate(openssl) {
  const dir = mkdtempSync(join(tmpdir(), 'notify-tls-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const made = spawnSync(openssl, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`openssl req failed (${made.status}): ${made.stderr || made.error}`);
  return { cert, key };
}
