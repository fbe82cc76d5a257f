// Patches postgres.js 3.4.x (run by `postinstall`; idempotent). Without it a backend that dies
// under load (pg_terminate_backend, a database restart, a proxy reset) crashes the process:
//
//   TypeError: Cannot read properties of null (reading 'write')  at Immediate.nextWrite
//
// When a connection closes, `closed()` sets its socket to null and clears the pending write
// timer without forgetting it. A query issued afterwards on that connection object (the ROLLBACK
// that `sql.begin` sends after the transaction's query failed, or any query on a reserved
// connection) is then written to the null socket: synchronously, or from a setImmediate whose
// exception nothing can catch. Upstream: porsager/postgres issues 1066, 1154, 1208 (open; PRs
// 1168, 1209 not released in 3.4.10). The patch:
//   1. execute() on a connection whose socket is gone rejects the query with CONNECTION_CLOSED
//      (and leaves the pool's bookkeeping of the connection alone);
//   2. nextWrite() with no socket drops the buffered bytes and settles what is waiting on them;
//   3. closed() forgets the write timer and the buffered bytes, so a reconnect starts clean;
//   4. releasing a reserved connection that closed meanwhile does not put it back in the pool's
//      `open` queue (the pool already took it back when it closed);
//   5. a connection that dies while fetching the array types (what every new connection does
//      first) fails the query waiting for it instead of leaving an unhandled rejection, which
//      ends the process.
// src/db/index.ts refuses to use an unpatched postgres.js.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const MARKER = 'meterproof patch';
/** The installed postgres package (wherever npm put it), or null. */
function postgresRoot() {
  try {
    // the CommonJS entry is <root>/cjs/src/index.js
    return path.resolve(path.dirname(createRequire(import.meta.url).resolve('postgres')), '..', '..');
  } catch {
    return null;
  }
}

const EDITS = {
  'connection.js': [
    [
      `  function execute(q) {
    if (terminated)
      return queryError(q, Errors.connection('CONNECTION_DESTROYED', options))
`,
      `  function execute(q) {
    if (terminated)
      return queryError(q, Errors.connection('CONNECTION_DESTROYED', options))

    if (socket === null) // ${MARKER} (1): closed; what was sent was settled then
      return (queryError(q, Errors.connection('CONNECTION_CLOSED', options)), true)
`,
    ],
    [
      `  function nextWrite(fn) {
    const x = socket.write(chunk, fn)
`,
      `  function nextWrite(fn) {
    if (socket === null) { // ${MARKER} (2)
      nextWriteTimer !== null && clearImmediate(nextWriteTimer)
      chunk = nextWriteTimer = null
      error(Errors.connection('CONNECTION_CLOSED', options))
      return false
    }
    const x = socket.write(chunk, fn)
`,
    ],
    [
      `      if (needsTypes) {
        initial.reserve && (initial = null)
        return fetchArrayTypes()
      }`,
      `      if (needsTypes) {
        initial.reserve && (initial = null)
        return fetchArrayTypes().catch(errored) // ${MARKER} (5): the connection died meanwhile
      }`,
    ],
    [
      `    incomings = null
    clearImmediate(nextWriteTimer)
    socket.removeListener('data', data)`,
      `    incomings = null
    clearImmediate(nextWriteTimer)
    chunk = nextWriteTimer = null // ${MARKER} (3)
    socket.removeListener('data', data)`,
    ],
  ],
  'index.js': [
    [
      `    sql.release = () => {
      c.reserved = null
      onopen(c)
    }`,
      `    sql.release = () => {
      c.reserved = null
      ;(c.queue === reserved || c.queue === full) && onopen(c) // ${MARKER} (4)
    }`,
    ],
  ],
};

export function patchPostgres(dir = postgresRoot()) {
  if (!dir) throw new Error('postgres is not installed');
  const version = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
  if (!/^3\.4\./.test(version)) throw new Error(`postgres ${version}: the patch is written for 3.4.x; review scripts/patch-postgres.mjs`);
  let changed = 0;
  for (const sub of ['src', path.join('cjs', 'src'), path.join('cf', 'src')]) {
    for (const [file, edits] of Object.entries(EDITS)) {
      const p = path.join(dir, sub, file);
      if (!fs.existsSync(p)) continue;
      const before = fs.readFileSync(p, 'utf8');
      let text = before;
      for (const [from, to] of edits) {
        if (text.includes(to)) continue; // applied by an earlier run
        if (!text.includes(from)) throw new Error(`${p}: the code to patch is not there (postgres ${version}); review scripts/patch-postgres.mjs`);
        text = text.replace(from, to);
      }
      if (text === before) continue;
      fs.writeFileSync(p, text);
      changed++;
    }
  }
  return { version, changed };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (!postgresRoot()) process.exit(0); // installed without postgres: nothing to patch
  const { version, changed } = patchPostgres();
  console.log(`postgres ${version}: ${changed ? `patched ${changed} file(s)` : 'already patched'}`);
}
