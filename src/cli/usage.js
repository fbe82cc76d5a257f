// @ts-check
// The `meterproof` command line's usage: every command, every flag, its values. Plain JavaScript
// with no imports, so bin/meterproof.js answers --help without loading TypeScript or the app
// (help in ~0.1 s), and the commands build their parseArgs options from the same tables (a flag
// the parser accepts is a flag the help lists).

/**
 * @typedef {object} Option
 * @property {string} name long name, without `--`
 * @property {'string' | 'boolean'} type
 * @property {string} [short] one-letter alias
 * @property {string} [arg] what the value is, e.g. `<file>`, `strict|standard`
 * @property {boolean} [multiple] may be given more than once
 * @property {boolean} [required]
 * @property {string} [default]
 * @property {string} help
 *
 * @typedef {object} Command
 * @property {string} usage
 * @property {string} summary one line, for the command list
 * @property {string} [about] what it does, a few lines
 * @property {Option[]} options
 * @property {string[]} [env] environment variables it reads (`NAME  meaning`)
 * @property {string} [exit] its exit codes, when they differ from the general ones
 */

const FILE_OR_STDIN = '<file|->';

/** Environment of serve / worker / migrate (README "Configuration"). */
const STORE_ENV = [
  'DATA_DIR                      ./data: keys, admin token, embedded store (one process at a time)',
  'DATABASE_URL                  postgres://… : PostgreSQL instead of the embedded store',
  'DB_CONNECT_TIMEOUT_MS         3000: PostgreSQL connection establishment bound',
  'DB_STATEMENT_TIMEOUT_MS       5000: PostgreSQL statement_timeout (migrations run without one)',
  'DB_IDLE_IN_TRANSACTION_TIMEOUT_MS  10000',
  'LOG_LEVEL                     info: fatal|error|warn|info|debug|trace|silent',
];
const SERVER_ENV = [
  'PORT / HOST                   8088 / 127.0.0.1: listen address',
  ...STORE_ENV,
  'METERPROOF_ADMIN_TOKEN        admin bearer token (≥ 24 chars of RFC 6750 b64token); else generated into DATA_DIR/admin-token',
  'METERPROOF_SIGNING_KEY        private Ed25519 JWK of the statement key; else generated into DATA_DIR/keys/',
  'METERPROOF_LOG_KEY            private Ed25519 JWK of the log key; else generated into DATA_DIR/keys/',
  'METERPROOF_LOG_ORIGIN         meterproof.local/log: checkpoint origin and note key name',
  'PROVER_WORKERS                1: in-process prover threads (0: run `meterproof worker` elsewhere)',
  'BODY_LIMIT_BYTES              2097152: request size limit (413 beyond)',
  'KEY_ROTATION_GRACE_MS         5000 (≥ 1000): overlap of old and new key after a rotation',
  'LOG_CHECKPOINT_INTERVAL_MS    100: shortest time between two signed checkpoints',
  'REVOCATION_LIST_LIFETIME_MS   86400000 (60 s to 30 days): lifetime of the served revocation list',
  'METERPROOF_ED25519            node: sign with node:crypto even where sodium-native is installed',
  'VERIFY_THREADS                available cores: worker threads of POST /v1/verify/batch (0: the request thread)',
  'PROOF_QUEUE_LIMIT             10000: proof jobs queued or running at which new eager jobs are deferred',
  'METERPROOF_SAMPLING_SECRET    ≥ 32 chars: picks the events a sampled tenant proves; else DATA_DIR/keys/sampling.key',
  'WEBHOOK_DELIVERY              on: whether this process sends webhooks (on|off)',
  'POP_TOLERANCE_MS              300000: accepted distance of a consumer PoP timestamp from the server clock',
  'METERPROOF_FROM_SOURCE        1: run the TypeScript sources (tsx) even where dist/ is built',
];

/** @type {Record<string, Command>} */
export const COMMANDS = {
  serve: {
    usage: 'meterproof serve',
    summary: 'serve the API (configured by environment variables; npm start)',
    about: 'Opens the store (migrating it), then listens. Stops gracefully on SIGTERM or SIGINT.',
    options: [],
    env: SERVER_ENV,
  },
  worker: {
    usage: 'meterproof worker',
    summary: 'a prover process pulling proof jobs from the shared PostgreSQL',
    about: 'Needs DATABASE_URL (the embedded store serves one process). PROVER_WORKERS threads (at least 1).',
    options: [],
    env: [...STORE_ENV, 'PROVER_WORKERS                1: prover threads', 'METERPROOF_SIGNING_KEY        as for serve'],
  },
  migrate: {
    usage: 'meterproof migrate',
    summary: 'apply database migrations, then exit',
    about: 'Applies the migrations to DATABASE_URL, or to the embedded store in DATA_DIR.',
    options: [],
    env: STORE_ENV,
  },
  verify: {
    usage: 'meterproof verify <bundle.json|-> [<bundle.json> …] --trust <trust.json> [options]',
    summary: 'verify bundles offline against trust material',
    about:
      'Runs every check of docs/protocol.md §3 (signature, key validity, revocation, digests, fingerprint,\n' +
      'charge, chain, Groth16 proof, log inclusion, checkpoint, consistency) and prints each, then VALID or\n' +
      'INVALID. An INVALID report names every check that failed and every required check that was skipped.',
    options: [
      { name: 'trust', type: 'string', arg: FILE_OR_STDIN, required: true, help: 'trust material (GET /v1/trust, or `meterproof trust`)' },
      { name: 'profile', type: 'string', arg: 'strict|standard', default: 'strict', help: 'strict: proof, log receipt and revocation list required; standard: signature, digests, charge and chain required, the rest checked when present' },
      { name: 'json', type: 'boolean', help: 'print the report as JSON (with skipped_but_required) instead of one line per check' },
      { name: 'revocations', type: 'string', arg: FILE_OR_STDIN, help: 'a signed revocation list (GET /.well-known/billing-revocations.json) replacing the trust file\'s' },
      { name: 'trust-state', type: 'string', arg: '<file>', help: 'state kept between runs: refuses a revocation list older than one accepted before (created on first use, then replaced atomically)' },
      { name: 'trusted-checkpoint', type: 'string', arg: FILE_OR_STDIN, help: 'a signed checkpoint note of the log that you pinned (GET /v1/log/checkpoint, kept): the bundle\'s checkpoint must be consistent with it (replaces log.trusted_checkpoint of the trust file)' },
      { name: 'require-pop', type: 'boolean', help: "bilateral metering: the bundle must carry a consumer's proof of possession (docs/protocol.md §2.14)" },
      { name: 'require-countersignature', type: 'boolean', help: "bilateral metering: the bundle must carry the consumer's countersignature (docs/protocol.md §2.15)" },
      { name: 'threads', type: 'string', arg: '<0-99>', default: 'the cores from 1,000 bundles on, else 0', help: 'with many bundles: worker threads checking them (their Groth16 pairing equations batched; one line per file, then a summary)' },
      { name: 'consistency-proof', type: 'string', arg: FILE_OR_STDIN, help: 'GET /v1/log/proof/consistency?from=<smaller size>&to=<larger size> (JSON {hashes} or an array of base64 hashes) between the trusted checkpoint and the bundle\'s; needed when their sizes differ' },
    ],
    exit: '0 valid, 1 invalid, 2 unusable input (unreadable file, not a bundle, not trust material) or usage',
  },
  redact: {
    usage: 'meterproof redact <bundle.json|-> [-o <out.json>]',
    summary: 'withhold a full bundle\'s private fields for an auditor',
    about: 'Removes the meter event, the tariff terms, the billing detail and the salts; the redacted bundle\nstill verifies (against the tariff version\'s published commitment). Says on stderr what it still shows.',
    options: [{ name: 'out', short: 'o', type: 'string', arg: '<file>', help: 'write there (a new file) instead of standard output' }],
  },
  'keys generate': {
    usage: 'meterproof keys generate [--out <file>]',
    summary: 'a new Ed25519 signing key (private JWK, mode 0600); prints the public JWK',
    options: [{ name: 'out', type: 'string', arg: '<file>', default: 'DATA_DIR/keys/<kid>.key.json', help: 'where to write the private key (never overwritten)' }],
    env: ['DATA_DIR                      ./data: where the key goes without --out'],
  },
  trust: {
    usage: 'meterproof trust --key <key.json> [--key …] [options]',
    summary: 'trust material for bundles signed by local keys (offline attest)',
    options: [
      { name: 'key', type: 'string', arg: FILE_OR_STDIN, multiple: true, required: true, help: 'a private key file (from `meterproof keys generate`); its public JWK goes into the JWKS' },
      { name: 'valid-from', type: 'string', arg: '<RFC 3339 time>', default: "the key's created_at", help: 'start of the keys\' validity window' },
      { name: 'vkey', type: 'string', arg: FILE_OR_STDIN, help: 'a verification key to include (must be a pinned one, e.g. keys/verification_key.json)' },
      { name: 'tariff-of', type: 'string', arg: FILE_OR_STDIN, multiple: true, help: 'a full bundle whose tariff version\'s commitment is published (what its redacted form is checked against)' },
    ],
  },
  attest: {
    usage: 'meterproof attest --offline --event <e.json> --tariff <t.json> --key <k.json> [options]',
    summary: 'sign a bn128-poseidon8-v2 bundle offline (no proof, no log receipt)',
    about:
      'Prices the event under the tariff and signs the statement with the key. Such a bundle verifies under\n' +
      '--profile standard only. POST /v1/attest on a server gives proofs and receipts.',
    options: [
      { name: 'offline', type: 'boolean', required: true, help: 'required: the CLI attests only offline' },
      { name: 'event', type: 'string', arg: FILE_OR_STDIN, required: true, help: 'the meter event (JSON)' },
      { name: 'tariff', type: 'string', arg: FILE_OR_STDIN, required: true, help: 'the tariff snapshot (JSON)' },
      { name: 'key', type: 'string', arg: FILE_OR_STDIN, required: true, help: 'the private signing key (from `meterproof keys generate`)' },
      { name: 'tariff-salt', type: 'string', arg: '<decimal>', default: 'random', help: 'the tariff version\'s salt, below the bn128 scalar field modulus; every bundle of one version must share it' },
      { name: 'seq', type: 'string', arg: '<n>', default: '0', help: 'position of the statement in its chain (tenant, endpoint, billing window)' },
      { name: 'prev', type: 'string', arg: 'sha256:<64 hex>', help: 'digest of the chain\'s previous statement; required when --seq > 0, refused at 0' },
      { name: 'cumulative-before', type: 'string', arg: '<units>', default: '0', help: 'billable units of the chain before this event (tiered prices depend on it); 0 at --seq 0' },
      { name: 'issued-at', type: 'string', arg: '<RFC 3339 time>', default: 'now', help: 'the statement\'s issue time' },
    ],
  },
  'settlement verify': {
    usage: 'meterproof settlement verify <evidence.json|-> --trust <trust.json> [--json]',
    summary: 'recompute a settlement from its evidence and check hash, signature, plan, adjustments, completeness, totals, log inclusion',
    about: 'The evidence is GET /v1/settlements/{id}/evidence. Names the first difference when the recomputed\nsettlement differs from the signed one. The evidence is read as a stream (bounded memory for a\nwindow of millions of events); its statements are checked on one worker thread per core.',
    options: [
      { name: 'trust', type: 'string', arg: FILE_OR_STDIN, required: true, help: 'trust material (GET /v1/trust)' },
      { name: 'json', type: 'boolean', help: 'print the report as JSON' },
    ],
    exit: '0 valid, 1 invalid (a check failed), 2 unusable input (not evidence, unreadable file) or usage',
  },
  'evidence export': {
    usage: 'meterproof evidence export --url <base url> (--tenant <id> --window <id> | --attestation <id> | --settlement <id>) [-o <pack.ndjson>]',
    summary: 'download an evidence pack (GET /v1/evidence), written as it arrives',
    about: 'A pack (docs/protocol.md §6) holds the bundles, the trust snapshot, a recent log checkpoint with\nconsistency proofs, the settlement (if any) and a manifest signed by the service.',
    options: [
      { name: 'url', type: 'string', arg: '<http(s) url>', required: true, help: "the service's base URL" },
      { name: 'token', type: 'string', arg: '<api key>', default: '$METERPROOF_TOKEN', help: 'an API key with the read scope for the tenant' },
      { name: 'tenant', type: 'string', arg: '<id>', help: 'with --window: a billing window of this tenant' },
      { name: 'window', type: 'string', arg: '<id>', help: 'the billing_window_id' },
      { name: 'attestation', type: 'string', arg: '<id>', help: 'one attestation (its 64-hex id)' },
      { name: 'settlement', type: 'string', arg: '<id>', help: 'a settlement' },
      { name: 'out', short: 'o', type: 'string', arg: '<file>', help: 'write there (a new file) instead of standard output' },
    ],
    env: ['METERPROOF_TOKEN              the API key when --token is not given'],
    exit: '0 written, 2 usage, service unreachable or refusing (one line with its problem code)',
  },
  'evidence verify': {
    usage: 'meterproof evidence verify <pack.ndjson|-> (--trust <pinned.json> | --embedded-trust) [options]',
    summary: 'verify an evidence pack offline: every bundle, the log, the manifest, the settlement',
    about:
      'Reads the pack line by line (any size). With --trust only the pinned JWKS and log key are trusted and the\n' +
      'pack must carry exactly them (PINNED_LOG_KEY_MISMATCH, PINNED_JWKS_MISMATCH); the verdict is VALID or\n' +
      'INVALID. With --embedded-trust the pack is checked against the keys it carries, which shows only that it\n' +
      'is consistent with itself: the verdict is CONSISTENT WITH ITSELF or INVALID. One of the two is required.',
    options: [
      { name: 'trust', type: 'string', arg: FILE_OR_STDIN, help: 'pinned trust: a saved GET /v1/trust, or {jwks, log: {verifier_key}}, obtained out of band' },
      { name: 'embedded-trust', type: 'boolean', help: 'instead of --trust: check the pack only against the keys it carries' },
      { name: 'profile', type: 'string', arg: 'strict|standard', default: 'strict', help: 'the bundle profile (docs/protocol.md §3)' },
      { name: 'json', type: 'boolean', help: 'print the verdict as JSON' },
    ],
    exit: '0 valid (or consistent with itself, with --embedded-trust), 1 invalid (a check failed: truncated, tampered, incomplete, pin mismatch), 2 not a pack or usage (neither --trust nor --embedded-trust)',
  },
  reconcile: {
    usage: 'meterproof reconcile <invoice.csv|.ndjson|.json|-> (--pack <pack.ndjson> (--trust <pinned.json> | --embedded-trust) | --url <base> --tenant <id> --window <id>) [options]',
    summary: 'match invoice lines to attested charges: matched, amount mismatch, billed without attestation, attested unbilled',
    about:
      'Invoice lines: CSV with a header (event_id or attestation_id, billed_micros or amount, currency), NDJSON or a\n' +
      'JSON array of objects with the same members. amount is a decimal of the major unit, at most 6 fractional\n' +
      'digits, parsed exactly. Offline with --pack (verified first; its valid bundles are the attested charges),\n' +
      'or through POST /v1/reconcile with --url.',
    options: [
      { name: 'pack', type: 'string', arg: FILE_OR_STDIN, help: 'offline: the evidence pack of the billing window (meterproof evidence export)' },
      { name: 'trust', type: 'string', arg: FILE_OR_STDIN, help: 'with --pack: pinned trust (as evidence verify)' },
      { name: 'embedded-trust', type: 'boolean', help: 'with --pack, instead of --trust: the keys the pack carries (as evidence verify)' },
      { name: 'profile', type: 'string', arg: 'strict|standard', default: 'strict', help: 'with --pack: the bundle profile' },
      { name: 'url', type: 'string', arg: '<http(s) url>', help: "the API instead of a pack: the service's base URL" },
      { name: 'token', type: 'string', arg: '<api key>', default: '$METERPROOF_TOKEN', help: 'with --url: an API key with the read scope' },
      { name: 'tenant', type: 'string', arg: '<id>', help: 'with --url: the tenant' },
      { name: 'window', type: 'string', arg: '<id>', help: 'with --url: the billing_window_id' },
      { name: 'format', type: 'string', arg: 'csv|ndjson|json', default: 'from the first character', help: 'the invoice format' },
      { name: 'out', type: 'string', arg: '<file>', help: 'write every discrepancy there, one JSON object a line' },
      { name: 'json', type: 'boolean', help: 'print the report as JSON' },
    ],
    env: ['METERPROOF_TOKEN              the API key when --token is not given'],
    exit: '0 every line matched and nothing attested is unbilled, 1 discrepancies (or the pack is invalid), 2 usage or unreadable input',
  },
  report: {
    usage: 'meterproof report <pack.ndjson|-> (--trust <pinned.json> | --embedded-trust) [--invoice <lines.csv>] [-o <report.html>]',
    summary: "an auditor's report: a printable HTML page of the verified pack and the reconciliation",
    about: 'Totals, breakdowns, every check with its code, the reconciliation (with --invoice) and the exact\ncommands to re-verify offline. Self-contained (no script, no external resource); print it for a PDF.',
    options: [
      { name: 'trust', type: 'string', arg: FILE_OR_STDIN, help: 'pinned trust (as evidence verify)' },
      { name: 'embedded-trust', type: 'boolean', help: 'instead of --trust: the keys the pack carries (as evidence verify)' },
      { name: 'invoice', type: 'string', arg: '<file>', help: 'invoice lines to reconcile (as reconcile)' },
      { name: 'profile', type: 'string', arg: 'strict|standard', default: 'strict', help: 'the bundle profile' },
      { name: 'out', short: 'o', type: 'string', arg: '<file>', help: 'write there instead of standard output' },
    ],
    exit: '0 the pack is valid (or consistent with itself, with --embedded-trust), 1 invalid (the report says why), 2 not a pack or usage',
  },
  'log monitor': {
    usage: 'meterproof log monitor --log <base url> --state <file> [options]',
    summary: 'watch a transparency log: key, checkpoint signature, consistency with the last run',
    about: 'First run pins the key and stores the checkpoint; later runs check the new one extends it.',
    options: [
      { name: 'log', type: 'string', arg: '<http(s) url>', required: true, help: 'the service\'s base URL (it serves /v1/log/…)' },
      { name: 'state', type: 'string', arg: '<file>', required: true, help: 'the state kept between runs (created on first run, replaced atomically)' },
      { name: 'verifier-key', type: 'string', arg: '<name+hex+base64>', default: 'the served key, on first run', help: 'the log\'s signed-note verifier key, as published out of band' },
      { name: 'timeout-ms', type: 'string', arg: '<ms>', default: '15000', help: 'per request' },
    ],
    exit: '0 consistent (or first run, or unchanged), 1 ALARM (key change, bad signature, rollback, split view, bad proof), 2 usage, unusable state or log unreachable',
  },
  'ceremony init': {
    usage: 'meterproof ceremony init --circuit <r1cs> --ptau <ptau> --out <dir> --beacon-source <text> [--label <text>]',
    summary: 'coordinator: the initial zkey and transcript.json',
    about: '--beacon-source names, before anyone contributes, the public value the beacon will be\n(e.g. "drand quicknet round 12345678 randomness"). docs/ceremony.md describes the whole flow.',
    options: [
      { name: 'circuit', type: 'string', arg: '<r1cs>', required: true, help: 'the compiled circuit' },
      { name: 'ptau', type: 'string', arg: '<ptau>', required: true, help: 'powers of tau (phase 1)' },
      { name: 'out', type: 'string', arg: '<dir>', required: true, help: 'where <circuit>_0000.zkey and transcript.json go' },
      { name: 'beacon-source', type: 'string', arg: '<text>', required: true, help: 'the announced source of the final beacon' },
      { name: 'label', type: 'string', arg: '<text>', help: 'a label for the transcript' },
    ],
  },
  'ceremony contribute': {
    usage: 'meterproof ceremony contribute <in.zkey> <out.zkey> --name <who> [options]',
    summary: 'contributor: one contribution to the latest zkey, attested in the transcript',
    about: 'Entropy: 64 bytes from the OS plus --entropy-file\'s bytes; it is never written anywhere.',
    options: [
      { name: 'name', type: 'string', arg: '<who>', required: true, help: 'your name in the transcript' },
      { name: 'transcript', type: 'string', arg: '<t.json>', default: 'transcript.json beside <in.zkey>', help: 'the transcript to append your attestation to' },
      { name: 'entropy-file', type: 'string', arg: FILE_OR_STDIN, help: 'extra entropy (- reads standard input)' },
      { name: 'key', type: 'string', arg: '<key.json>', help: 'sign your attestation with this private key (from `meterproof keys generate`)' },
    ],
  },
  'ceremony beacon': {
    usage: 'meterproof ceremony beacon <in.zkey> <out.zkey> --beacon-hash <hex> --iterations <n> [options]',
    summary: 'coordinator: the final zkey from the announced public value',
    options: [
      { name: 'beacon-hash', type: 'string', arg: '<hex>', required: true, help: 'the announced public value' },
      { name: 'iterations', type: 'string', arg: '10..63', required: true, help: 'the value is hashed 2^n times' },
      { name: 'transcript', type: 'string', arg: '<t.json>', default: 'transcript.json beside <in.zkey>', help: 'the transcript' },
      { name: 'name', type: 'string', arg: '<text>', help: 'the beacon\'s name in the transcript' },
    ],
  },
  'ceremony verify': {
    usage: 'meterproof ceremony verify --transcript <t.json> --circuit <r1cs> --ptau <ptau> --zkey <zkey> [options]',
    summary: 'anyone: re-verify the zkey chain and every transcript entry',
    about: 'snarkjs re-verifies the chain from this r1cs and ptau; every transcript entry must match it in order,\nthe beacon must use the announced source, value and iterations, the verification key must be the zkey\'s.',
    options: [
      { name: 'transcript', type: 'string', arg: '<t.json>', required: true, help: 'the transcript' },
      { name: 'circuit', type: 'string', arg: '<r1cs>', required: true, help: 'the compiled circuit' },
      { name: 'ptau', type: 'string', arg: '<ptau>', required: true, help: 'powers of tau (phase 1)' },
      { name: 'zkey', type: 'string', arg: '<zkey>', required: true, help: 'the final (or latest) zkey' },
      { name: 'vkey', type: 'string', arg: '<verification_key.json>', help: 'must be the zkey\'s verification key' },
      { name: 'beacon-hash', type: 'string', arg: '<hex>', help: 'the public value you looked up yourself' },
      { name: 'in-progress', type: 'boolean', help: 'a chain without beacon yet (check what you received before contributing)' },
    ],
    exit: '0 verified, 1 a mismatch (one line naming the first), 2 usage or unreadable input',
  },
};

/** Commands with subcommands: `meterproof <group> <sub>`. */
export const GROUPS = {
  keys: ['generate'],
  log: ['monitor'],
  settlement: ['verify'],
  evidence: ['export', 'verify'],
  ceremony: ['init', 'contribute', 'beacon', 'verify'],
};

export const EXIT_CODES = [
  '0  done; VALID; consistent',
  '1  INVALID (verify), ALARM (log monitor), a refused or failed step (ceremony)',
  '2  usage error (unknown command or flag, missing argument) or unusable input (unreadable file, bad JSON, bad configuration)',
  '3  the embedded store of DATA_DIR is in use by another process (serve, worker, migrate)',
  '4  could not start: the port is in use, or the database cannot be reached (serve, worker, migrate)',
];

const ORDER = ['serve', 'worker', 'migrate', 'verify', 'settlement verify', 'evidence export', 'evidence verify', 'reconcile', 'report', 'redact', 'keys generate', 'trust', 'attest', 'log monitor', 'ceremony init', 'ceremony contribute', 'ceremony beacon', 'ceremony verify'];

/** The general help. */
export function generalHelp() {
  const lines = [
    'meterproof — zero-knowledge billing attestation',
    '',
    'usage: meterproof <command> [options]        meterproof <command> --help: its flags and their values',
    '',
    'commands:',
    ...ORDER.map((n) => `  ${n.padEnd(21)} ${COMMANDS[n]?.summary}`),
    '',
    'A file argument given as - is read from standard input (at most one - per command).',
    '',
    'exit codes:',
    ...EXIT_CODES.map((l) => `  ${l}`),
    '',
  ];
  return lines.join('\n');
}

/** @param {Option} o */
function flagColumn(o) {
  const names = `${o.short ? `-${o.short}, ` : '    '}--${o.name}`;
  return o.type === 'boolean' ? names : `${names} ${o.arg ?? '<value>'}`;
}

const WIDTH = 100;

/** `text` wrapped at WIDTH columns, continuation lines indented to `indent`. @param {string} text @param {number} indent */
function wrap(text, indent) {
  const out = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && indent + line.length + 1 + word.length > WIDTH) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  out.push(line);
  return out.join(`\n${' '.repeat(indent)}`);
}

/** The help of one command (`keys generate`, `verify`, …). @param {string} name */
export function commandHelp(name) {
  const c = COMMANDS[name];
  if (!c) throw new Error(`no command ${name}`);
  const rows = [...c.options.map((o) => [flagColumn(o), `${o.help}${o.required ? ' (required)' : ''}${o.default !== undefined ? ` (default: ${o.default})` : ''}${o.multiple ? ' (repeatable)' : ''}`]), ['-h, --help', 'this help']];
  const width = Math.max(...rows.map((r) => r[0]?.length ?? 0)) + 2;
  const lines = [`usage: ${c.usage}`, '', c.summary, ...(c.about ? ['', c.about] : []), '', 'options:', ...rows.map(([f, h]) => `  ${(f ?? '').padEnd(width)}${wrap(h ?? '', 2 + width)}`)];
  if (c.env) lines.push('', 'environment (name, default: meaning):', ...c.env.map((e) => `  ${e}`));
  lines.push('', `exit codes: ${c.exit ?? 'see meterproof --help'}`, '');
  return lines.join('\n');
}

/** The help of a group (`meterproof ceremony --help`): each subcommand's. @param {string} group */
function groupHelp(group) {
  const subs = /** @type {Record<string, string[]>} */ (GROUPS)[group] ?? [];
  return subs.map((s) => commandHelp(`${group} ${s}`)).join('\n');
}

const isHelp = (/** @type {string} */ a) => a === '--help' || a === '-h';

/**
 * What to print instead of running a command, or null to run it: `meterproof`, `meterproof --help`,
 * `meterproof help [command]`, and any command with -h/--help among its arguments (before `--`).
 * @param {readonly string[]} argv the arguments after `meterproof`
 * @returns {{ text: string, code: number, stream: 'stdout' | 'stderr' } | null}
 */
export function helpRequest(argv) {
  const [first, ...rest] = argv;
  if (first === undefined) return { text: generalHelp(), code: 2, stream: 'stderr' };
  if (isHelp(first)) return { text: generalHelp(), code: 0, stream: 'stdout' };
  if (first === 'help') {
    if (rest.length === 0) return { text: generalHelp(), code: 0, stream: 'stdout' };
    return helpOf(rest) ?? { text: `meterproof: unknown command "${rest.join(' ')}" (try meterproof --help)\n`, code: 2, stream: 'stderr' };
  }
  const end = argv.indexOf('--');
  const args = end < 0 ? rest : rest.slice(0, end - 1);
  if (!args.some(isHelp)) return null;
  return helpOf([first, ...args.filter((a) => !isHelp(a))]);
}

/** @param {readonly string[]} words @returns {{ text: string, code: number, stream: 'stdout' } | null} */
function helpOf(words) {
  const [name, sub] = words;
  if (name === undefined) return null;
  if (Object.hasOwn(GROUPS, name)) {
    const full = `${name} ${sub}`;
    return { text: sub !== undefined && Object.hasOwn(COMMANDS, full) ? commandHelp(full) : groupHelp(name), code: 0, stream: 'stdout' };
  }
  return Object.hasOwn(COMMANDS, name) ? { text: commandHelp(name), code: 0, stream: 'stdout' } : null;
}

/**
 * The parseArgs options of a command, from its table.
 * @param {string} name
 * @returns {Record<string, { type: 'string' | 'boolean', short?: string, multiple?: boolean }>}
 */
export function parseOptions(name) {
  const c = COMMANDS[name];
  if (!c) throw new Error(`no command ${name}`);
  return Object.fromEntries(c.options.map((o) => [o.name, { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }]));
}
