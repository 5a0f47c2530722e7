/**
 * A throwaway certificate authority and a server certificate it signed, for tests of TLS against
 * real servers (Kafka's SSL listeners) and fronts of our own (the OpenSearch TLS front). Node's
 * crypto cannot write X.509 certificates; the `openssl` command can (it comes with Debian's
 * ca-certificates, which the JDK the servers need pulls in).
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { findCommand, runChecked } from './commands.js';

export interface TestCertificates {
  /** PEM file of the CA: what a client is given to trust. */
  readonly caFile: string;
  /** PEM file of the server's private key (unencrypted PKCS#8). */
  readonly keyFile: string;
  /** PEM file of the server's certificate, signed by the CA, for 127.0.0.1 and localhost. */
  readonly certFile: string;
  readonly key: string;
  readonly cert: string;
}

/** Writes `<name>-ca.pem`, `<name>.key` and `<name>.pem` into `dir` (which must exist). */
export async function makeCertificates(dir: string, name = 'server'): Promise<TestCertificates> {
  if (!(await findCommand('openssl'))) throw new Error('TLS tests need the openssl command (apt-get install openssl)');
  const file = (suffix: string): string => path.join(dir, `${name}${suffix}`);
  const openssl = (what: string, ...args: string[]): Promise<void> => runChecked('openssl', args, { cwd: dir, what: `openssl ${what}` });
  await openssl('CA', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('-ca.key'), '-out', file('-ca.pem'), '-days', '7', '-subj', `/CN=lpr test CA ${name}`);
  // genpkey writes PKCS#8, the form Kafka's PEM key store reads.
  await openssl('key', 'genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', file('.key'));
  await openssl('CSR', 'req', '-new', '-key', file('.key'), '-out', file('.csr'), '-subj', '/CN=127.0.0.1');
  await writeFile(file('.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await openssl('sign', 'x509', '-req', '-in', file('.csr'), '-CA', file('-ca.pem'), '-CAkey', file('-ca.key'), '-CAcreateserial', '-out', file('.pem'), '-days', '7', '-extfile', file('.ext'));
  return { caFile: file('-ca.pem'), keyFile: file('.key'), certFile: file('.pem'), key: await readFile(file('.key'), 'utf8'), cert: await readFile(file('.pem'), 'utf8') };
}
