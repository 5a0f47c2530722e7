// Issue 21, item 8: one redactor (src/cloudflare-api/redact.ts) for every destination_conf form
// Cloudflare documents, for what error messages make of them (decoded, quoted), and for the URL
// settings of the start-up configuration line.
//
// Sources of the forms (cloudflare/cloudflare-docs, src/content/docs/logs/logpush/logpush-job/,
// published at developers.cloudflare.com/logs/logpush/logpush-job/...; the get-started/enable-destinations/
// paths redirect there):
//   [API]    api-configuration.mdx, "Destination": r2, s3, datadog, gs, azure, New Relic, splunk, sumo
//   [HTTP]   enable-destinations/http.mdx: https://logs.example.com?header_Authorization=Basic%20REDACTED&tags=...
//   [SPLUNK] enable-destinations/splunk.mdx: header_Authorization=<SPLUNK_AUTH_TOKEN>, "URL-encoded. For example: Splunk%20e6d94e8c-..."
//   [SUMO]   enable-destinations/sumo-logic.mdx + [API]: sumo://<SUMO_ENDPOINT_URL>/receiver/v1/http/<UNIQUE_HTTP_COLLECTOR_CODE>
//   [DD]     enable-destinations/datadog.mdx: datadog://<DATADOG_ENDPOINT_URL>?header_DD-API-KEY=<DATADOG_API_KEY>&ddsource=cloudflare&...
//   [R2]     enable-destinations/r2.mdx: r2://<BUCKET_PATH>/{DATE}?account-id=...&access-key-id=...&secret-access-key=...
//   [S3C]    enable-destinations/s3-compatible-endpoints.mdx: s3://...?region=...&access-key-id=...&secret-access-key=...&endpoint=...
//   [S3]     enable-destinations/aws-s3.mdx + [API]: s3://bucket/[dir]?region=<REGION>[&sse=AES256] (no secret: a bucket policy)
//   [AZURE]  enable-destinations/azure.mdx + [API]: azure://<BLOB_CONTAINER_PATH>/[dir]?<QUERY_STRING> (a SAS: ss=b, srt=o, sig=...)
//   [GCS]    enable-destinations/google-cloud-storage.mdx + [API]: gs://bucket/[dir] (no secret: IAM)
//   [NR]     enable-destinations/new-relic.mdx: https://log-api.newrelic.com/log/v1?Api-Key=<NR_LICENSE_KEY>&format=cloudflare
//   [ELASTIC] enable-destinations/elastic.mdx: https://<PUBLIC_DOMAIN>:<PUBLIC_PORT>?header_<SECRET_HEADER>=<SECRET_VALUE>
//   [IBMCL]  enable-destinations/ibm-cloud-logs.mdx: ibmcl://<INSTANCE_ID>.ingress.<REGION>.logs.cloud.ibm.com/logs/v1/singles?ibm_api_key=<IBM_API_KEY>
//   [QRADAR] enable-destinations/ibm-qradar.mdx: <QRADAR_URL>:<LOG_SOURCE_PORT> (HTTP receiver; no secret)
//   [KINESIS] enable-destinations/kinesis.mdx: kinesis://<STREAM_NAME>?region=...&access-key-id=...&secret-access-key=...,
//            or ...&sts-assume-role-arn=arn:aws:iam::<ID>:role/<NAME>[&sts-external-id=<EXTERNAL_ID>] (no secret:
//            AWS documents the external ID as not secret)
// Also research/logpush.md §1.1 (HTTP, header_* URL-encoded) and its section on Splunk.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { redactDestinationSecrets } from '../../src/cloudflare-api/redact.js'
import { describeConfig, loadConfig } from '../../src/config/index.js'

const S = 'S3CR3Tvalue'

/** [source, the form with secrets (each holding S), what it must become]. */
const DOCUMENTED: ReadonlyArray<readonly [string, string, string]> = [
  ['HTTP', `https://logs.example.com?header_Authorization=Basic%20${S}&tags=host:theburritobot.com,dataset:http_requests`,
    'https://logs.example.com?header_Authorization=Basic%20REDACTED&tags=host:theburritobot.com,dataset:http_requests'],
  ['SPLUNK', `splunk://splunk.cf-analytics.com:8088/services/collector/raw?channel=0d5f3c8e-8c6e-4b7a-9d55-3b1f6a2c9e10&insecure-skip-verify=false&sourcetype=cloudflare:json&header_Authorization=Splunk%20e6d94e8c-${S}`,
    'splunk://splunk.cf-analytics.com:8088/services/collector/raw?channel=0d5f3c8e-8c6e-4b7a-9d55-3b1f6a2c9e10&insecure-skip-verify=false&sourcetype=cloudflare:json&header_Authorization=Splunk%20REDACTED'],
  ['SUMO', `sumo://endpoint1.collection.us2.sumologic.com/receiver/v1/http/ZaVnC4dhaV3_${S}==`,
    'sumo://endpoint1.collection.us2.sumologic.com/receiver/v1/http/REDACTED'],
  ['DD v1', `datadog://http-intake.logs.datadoghq.com/v1/input?header_DD-API-KEY=20e6d94e8c${S}&ddsource=cloudflare&service=web&host=example.com&ddtags=env:prod`,
    'datadog://http-intake.logs.datadoghq.com/v1/input?header_DD-API-KEY=REDACTED&ddsource=cloudflare&service=web&host=example.com&ddtags=env:prod'],
  ['DD v2', `datadog://http-intake.logs.datadoghq.com/api/v2/logs?header_DD-API-KEY=${S}`,
    'datadog://http-intake.logs.datadoghq.com/api/v2/logs?header_DD-API-KEY=REDACTED'],
  ['R2', `r2://cloudflare-logs/http_requests/{DATE}?account-id=023e105f4ecef8ad9ca31a8372d0c353&access-key-id=AK${S}&secret-access-key=SK${S}`,
    'r2://cloudflare-logs/http_requests/{DATE}?account-id=023e105f4ecef8ad9ca31a8372d0c353&access-key-id=REDACTED&secret-access-key=REDACTED'],
  ['S3C', `s3://logs/cf/{DATE}?region=sfo2&access-key-id=AK${S}&secret-access-key=SK${S}&endpoint=sfo2.digitaloceanspaces.com`,
    's3://logs/cf/{DATE}?region=sfo2&access-key-id=REDACTED&secret-access-key=REDACTED&endpoint=sfo2.digitaloceanspaces.com'],
  ['S3', 's3://mybucket/logs/{DATE}?region=us-east-1&sse=AES256', 's3://mybucket/logs/{DATE}?region=us-east-1&sse=AES256'],
  ['AZURE', `azure://myblobcontainer/logs/{DATE}?sv=2022-11-02&ss=b&srt=o&sp=w&se=2031-01-01T00:00:00Z&st=2026-01-01T00:00:00Z&spr=https&sig=${S}%2Bab%2F%3D`,
    'azure://myblobcontainer/logs/{DATE}?sv=2022-11-02&ss=b&srt=o&sp=w&se=2031-01-01T00:00:00Z&st=2026-01-01T00:00:00Z&spr=https&sig=REDACTED'],
  ['GCS', 'gs://bucket/logs/{DATE}', 'gs://bucket/logs/{DATE}'],
  ['NR US', `https://log-api.newrelic.com/log/v1?Api-Key=${S}NRAL&format=cloudflare`, 'https://log-api.newrelic.com/log/v1?Api-Key=REDACTED&format=cloudflare'],
  ['NR EU', `https://log-api.eu.newrelic.com/log/v1?Api-Key=${S}&format=cloudflare`, 'https://log-api.eu.newrelic.com/log/v1?Api-Key=REDACTED&format=cloudflare'],
  ['ELASTIC', `https://elastic-agent.example.com:9560?header_X-Secret=${S}`, 'https://elastic-agent.example.com:9560?header_X-Secret=REDACTED'],
  ['IBMCL', `ibmcl://5a9b.ingress.eu-de.logs.cloud.ibm.com/logs/v1/singles?ibm_api_key=${S}`, 'ibmcl://5a9b.ingress.eu-de.logs.cloud.ibm.com/logs/v1/singles?ibm_api_key=REDACTED'],
  ['QRADAR', 'https://qradar.example.com:12469', 'https://qradar.example.com:12469'],
  ['KINESIS keys', `kinesis://cf-logs?region=us-east-1&access-key-id=AK${S}&secret-access-key=SK${S}`,
    'kinesis://cf-logs?region=us-east-1&access-key-id=REDACTED&secret-access-key=REDACTED'],
  ['KINESIS sts', 'kinesis://cf-logs?region=us-east-1&sts-assume-role-arn=arn:aws:iam::123456789012:role/logpush&sts-external-id=ext-1',
    'kinesis://cf-logs?region=us-east-1&sts-assume-role-arn=arn:aws:iam::123456789012:role/logpush&sts-external-id=ext-1']
]

test('every destination_conf form Cloudflare documents: its secrets become REDACTED, every other byte stays', () => {
  for (const [source, conf, expected] of DOCUMENTED) {
    const out = redactDestinationSecrets(conf)
    assert.equal(out, expected, source)
    assert.ok(!out.includes(S), `${source}: no part of the secret left`)
  }
})

test('what error messages make of a destination: a decoded space, user:secret, quoted values, URL userinfo, a Sumo path', () => {
  // The bug: the redactor stopped at the first space or colon, or at an opening quote, and knew
  // neither URL userinfo nor Sumo Logic's path secret, so each of these printed the secret.
  const cases: ReadonlyArray<readonly [string, string]> = [
    [`error uploading to https://h/x?header_Authorization=Bearer ${S}: 401`, 'error uploading to https://h/x?header_Authorization=Bearer REDACTED: 401'],
    [`header_Authorization=Splunk+${S}&x=1`, 'header_Authorization=Splunk+REDACTED&x=1'],
    [`https://h/?header_X-Auth=user:${S}&tags=a`, 'https://h/?header_X-Auth=REDACTED&tags=a'],
    [`destination "https://h/?header_Authorization="Bearer ${S}"" refused`, 'destination "https://h/?header_Authorization="Bearer REDACTED"" refused'],
    [`header_X-Key='${S} two words'`, 'header_X-Key=\'REDACTED\''],
    [`header_X-Key="${S}`, 'header_X-Key="REDACTED'],
    [`https://elastic:${S}@es.example.com:9200/`, 'https://elastic:REDACTED@es.example.com:9200/'],
    [`https://${S}@hec.example.com/services/collector`, 'https://REDACTED@hec.example.com/services/collector'],
    [`error uploading to https://endpoint4.collection.us2.sumologic.com/receiver/v1/http/${S}==: 403`, 'error uploading to https://endpoint4.collection.us2.sumologic.com/receiver/v1/http/REDACTED: 403'],
    // A first word that is no Authorization scheme may be the secret itself: all of it goes.
    [`header_X-Token=${S}%20more`, 'header_X-Token=REDACTED']
  ]
  for (const [text, expected] of cases) {
    const out = redactDestinationSecrets(text)
    assert.equal(out, expected, text)
    assert.ok(!out.includes(S), text)
  }
  // Nothing else is touched: our own path, a plain URL, an e-mail address in a path.
  for (const plain of ['https://receiver.example.com/logpush/http_requests', 'https://h/x/a@b.c?tags=a:b', 'no URL at all: 12:30']) {
    assert.equal(redactDestinationSecrets(plain), plain)
  }
})

test('the start-up configuration line: credentials inside ELASTICSEARCH_URL and SPLUNK_HEC_URL are masked like the password settings', () => {
  // The bug: https://user:password@host in either URL was printed in clear, while
  // ELASTICSEARCH_PASSWORD next to it showed (set).
  const config = loadConfig({
    LOGPUSH_TOKENS: 'intake-token-0123456789',
    DATA_DIR: '/tmp/lpr-redact',
    SINKS: 'elasticsearch,splunk',
    ELASTICSEARCH_URL: `https://elastic:${S}@es.example.com:9200`,
    ELASTICSEARCH_PASSWORD: `${S}2`,
    SPLUNK_HEC_URL: `https://hec:${S}@splunk.example.com:8088`,
    SPLUNK_HEC_TOKEN: `${S}3`
  })
  const line = JSON.stringify(describeConfig(config))
  assert.ok(!line.includes(S), line)
  const d = describeConfig(config)
  assert.equal(d.ELASTICSEARCH_URL, 'https://elastic:REDACTED@es.example.com:9200')
  assert.equal(d.SPLUNK_HEC_URL, 'https://hec:REDACTED@splunk.example.com:8088')
  assert.equal(d.ELASTICSEARCH_PASSWORD, '(set)')
  assert.equal(d.SPLUNK_HEC_TOKEN, '(set)')
})

test('a password holding an unencoded @, and more than one space or a tab after an Authorization scheme, leave no part of the secret', () => {
  // The bug: the userinfo was cut at its first '@', so https://elastic:p@ss@host (which the URL
  // parser, and so the Elasticsearch client, takes as password "p@ss") was logged as
  // elastic:REDACTED@ss@host; and "Bearer  SECRET" or "Bearer<TAB>SECRET" kept the secret after
  // the masked scheme.
  const cases: ReadonlyArray<readonly [string, string]> = [
    [`https://elastic:a@${S}@es.example.com:9200`, 'https://elastic:REDACTED@es.example.com:9200'],
    [`https://elastic:a@b@${S}@es.example.com:9200/x/a@b?q=c@d`, 'https://elastic:REDACTED@es.example.com:9200/x/a@b?q=c@d'],
    [`error uploading to https://h/x?header_Authorization=Bearer  ${S}: 401`, 'error uploading to https://h/x?header_Authorization=Bearer  REDACTED: 401'],
    [`header_Authorization=Bearer\t${S}&x=1`, 'header_Authorization=Bearer\tREDACTED&x=1'],
    [`header_Authorization=Splunk%20%20${S}&x=1`, 'header_Authorization=Splunk%20%20REDACTED&x=1']
  ]
  for (const [text, expected] of cases) {
    const out = redactDestinationSecrets(text)
    assert.equal(out, expected, text)
    assert.ok(!out.includes(S), text)
  }
  assert.equal(new URL(`https://elastic:a@${S}@es.example.com:9200`).hostname, 'es.example.com', 'the URL parser takes the last @')
})

test('a destination_conf inside JSON text (escaped quotes) or percent-encoded whole leaves no part of the secret', () => {
  // The bug: a value opening with an escaped quote (a conf quoted inside a JSON string, as a log
  // line or an API error body carries it) was cut at the backslash and kept whole after
  // REDACTED; and a conf percent-encoded whole (header_Authorization%3DBearer%2520...) was not
  // recognised at all.
  const cases: ReadonlyArray<readonly [string, string]> = [
    [`{"message":"bad destination https://h/?header_Authorization=\\"Bearer ${S}\\" refused"}`, '{"message":"bad destination https://h/?header_Authorization=\\"Bearer REDACTED\\" refused"}'],
    [`{"message":"header_X-Key=\\"${S}`, '{"message":"header_X-Key=\\"REDACTED'],
    [`https%3A%2F%2Fh%2F%3Fheader_Authorization%3DBearer%2520${S}%26tags%3Da`, 'https%3A%2F%2Fh%2F%3Fheader_Authorization%3DREDACTED'],
    [`r2%3A%2F%2Fb%3Faccess-key-id%3D${S}%26secret-access-key%3D${S}`, 'r2%3A%2F%2Fb%3Faccess-key-id%3DREDACTED']
  ]
  for (const [text, expected] of cases) {
    const out = redactDestinationSecrets(text)
    assert.equal(out, expected, text)
    assert.ok(!out.includes(S), text)
  }
})
