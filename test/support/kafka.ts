/**
 * A real, throwaway Apache Kafka broker in KRaft mode (one process, broker and controller), for
 * integration tests, without Docker: the jars of org.apache.kafka:kafka_2.13 and kafka-server with
 * their runtime dependencies, fetched from Maven Central with `mvn dependency:copy-dependencies`
 * into ~/.cache/logpush-receiver/kafka/<version>/lib, run with `java -cp lib/*` (Java 17+).
 * Topics are never created by a produce (auto.create.topics.enable=false): tests create theirs.
 */
import { mkdtemp, rename, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { runChecked } from './commands.js';
import { freePorts } from './elasticsearch.js';
import { makeCertificates } from './certificates.js';
import { ManagedProcess } from './managed-process.js';
import { cacheDir, fetchOnce, mvn, pickJdk, serverControls, serverVersion, type ServerControls } from './server-setup.js';

export interface KafkaBroker extends ServerControls {
  /** host:port of the PLAINTEXT listener. */
  readonly bootstrap: string;
  /** host:port of a SASL_PLAINTEXT listener: PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, user SASL_USER. */
  readonly saslBootstrap: string;
  /** host:port of an SSL listener, its certificate (for 127.0.0.1) signed by the CA in caFile. */
  readonly tlsBootstrap: string;
  /** host:port of a SASL_SSL listener: the SASL listener's mechanisms and user, over TLS. */
  readonly saslTlsBootstrap: string;
  /** PEM file of the test CA that signed the broker's certificate. */
  readonly caFile: string;
}

const DEFAULT_VERSION = '4.1.1';
/** The SASL listener's one user, for every mechanism. */
const SASL_USER = { username: 'lpr', password: 'lpr-secret' };
export async function launchKafka(log: (line: string) => void = () => {}): Promise<KafkaBroker> {
  const version = serverVersion('KAFKA_VERSION', DEFAULT_VERSION, 'Kafka');
  const javaHome = await pickJdk('KAFKA_JAVA_HOME', 17, 99, `Kafka ${version}`);
  const lib = await ensureJars(version, log);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lpr-kafka-'));
  const [port, controllerPort, saslPort, tlsPort, saslTlsPort] = await freePorts(5);
  // The SSL listeners' certificate, made for this broker: its key and certificate in one PEM key
  // store (ssl.keystore.type=PEM); tests trust it through the CA file.
  const certs = await makeCertificates(dir, 'broker');
  const keystore = path.join(dir, 'broker-keystore.pem');
  await writeFile(keystore, `${certs.key}${certs.cert}`);
  const listeners = { PLAINTEXT: port, SASL_PLAINTEXT: saslPort, SSL: tlsPort, SASL_SSL: saslTlsPort };
  const props = [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=${Object.entries(listeners).map(([name, p]) => `${name}://127.0.0.1:${p}`).join(',')},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=${Object.entries(listeners).map(([name, p]) => `${name}://127.0.0.1:${p}`).join(',')}`,
    'controller.listener.names=CONTROLLER',
    `listener.security.protocol.map=${Object.keys(listeners).map((name) => `${name}:${name}`).join(',')},CONTROLLER:PLAINTEXT`,
    'ssl.keystore.type=PEM',
    `ssl.keystore.location=${keystore}`,
    'sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512',
    ...['sasl_plaintext', 'sasl_ssl'].flatMap((listener) => [
      `listener.name.${listener}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${SASL_USER.username}="${SASL_USER.password}";`,
      `listener.name.${listener}.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
      `listener.name.${listener}.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
    ]),
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${path.join(dir, 'data')}`,
    'offsets.topic.replication.factor=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'auto.create.topics.enable=false',
    'num.partitions=3',
    'group.initial.rebalance.delay.ms=0',
  ];
  const config = path.join(dir, 'server.properties');
  await writeFile(config, `${props.join('\n')}\n`);
  const java = path.join(javaHome, 'bin', 'java');
  const cp = `${lib}/*`;
  const logging = [`-Dlog4j2.level=WARN`, '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn'];
  await runChecked(java, [...logging, '-cp', cp, 'kafka.tools.StorageTool', 'format', '-t', 'bHByLXRlc3QtY2x1c3RlcgA', '-c', config,
    // SCRAM credentials live in the metadata log: written at format time in KRaft.
    ...['SCRAM-SHA-256', 'SCRAM-SHA-512'].flatMap((m) => ['--add-scram', `${m}=[name=${SASL_USER.username},password=${SASL_USER.password}]`])], { what: 'kafka-storage format' });
  const bootstrap = `127.0.0.1:${port}`;
  const proc = new ManagedProcess({
    name: `Kafka ${version}`,
    tag: 'kafka',
    command: java,
    args: ['-Xms256m', '-Xmx512m', ...logging, '-cp', cp, 'kafka.Kafka', config],
    env: { ...process.env },
    cwd: dir,
    startupTimeoutMs: 90_000,
    log,
    ready: () => portOpen(port!),
  });
  log(`[kafka-harness] starting Kafka ${version} on ${bootstrap} (java ${javaHome})`);
  await proc.start();
  return {
    ...serverControls(proc, version, dir),
    bootstrap,
    saslBootstrap: `127.0.0.1:${saslPort}`,
    tlsBootstrap: `127.0.0.1:${tlsPort}`,
    saslTlsBootstrap: `127.0.0.1:${saslTlsPort}`,
    caFile: certs.caFile,
  };
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.setTimeout(2_000, () => {
      socket.destroy();
      resolve(false);
    });
  });
}

async function ensureJars(version: string, log: (line: string) => void): Promise<string> {
  const dir = cacheDir('kafka', 'KAFKA_CACHE_DIR', version);
  const lib = path.join(dir, 'lib');
  const dep = (a: string, v: string, g = 'org.apache.kafka'): string => `<dependency><groupId>${g}</groupId><artifactId>${a}</artifactId><version>${v}</version></dependency>`;
  await fetchOnce({
    dir,
    target: path.join(lib, `kafka_2.13-${version}.jar`),
    what: `Kafka ${version} and its dependencies`,
    tag: 'kafka',
    log,
    fetch: async (tmp) => {
      await writeFile(
        path.join(tmp, 'pom.xml'),
        `<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>` +
          `<groupId>lpr</groupId><artifactId>kafka-fetch</artifactId><version>1</version><packaging>pom</packaging><dependencies>` +
          dep('kafka_2.13', version) + dep('kafka-server', version) + dep('slf4j-simple', '1.7.36', 'org.slf4j') +
          `</dependencies></project>`,
      );
      await mvn(tmp, 'copy-dependencies', [`-DoutputDirectory=${path.join(tmp, 'lib')}`, '-DincludeScope=runtime'], `Kafka ${version}`);
    },
    place: (tmp) => rename(path.join(tmp, 'lib'), lib),
  });
  return lib;
}
