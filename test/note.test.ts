import { describe, expect, it } from 'vitest';
import { fromB64, toB64, utf8 } from '../src/core/bytes.ts';
import { generateEd25519, publicKeyFromSeed } from '../src/core/ed25519.ts';
import {
  NoteError,
  ed25519KeyId,
  ed25519NoteSigner,
  ed25519NoteSignerFromSeed,
  ed25519NoteVerifier,
  formatCheckpoint,
  formatVerifierKey,
  isValidKeyName,
  openCheckpoint,
  openNote,
  parseCheckpoint,
  parseVerifierKey,
  signCheckpoint,
  signNote,
  type NoteErrorCode,
  type NoteVerifier,
} from '../src/core/note.ts';

/** The error code a call throws, or 'OK'. Anything but a NoteError is rethrown. */
function codeOf(fn: () => unknown): NoteErrorCode | 'OK' {
  try {
    fn();
    return 'OK';
  } catch (e) {
    if (e instanceof NoteError) return e.code;
    throw e;
  }
}

// Known answers from golang.org/x/mod/sumdb/note (note.go package comment and example_test.go),
// the implementation C2SP signed-note was extracted from. The EnochRoot key is generated there
// from an all-zero random source, i.e. the all-zero Ed25519 seed.
const PETER_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const PETER_SKEY_DATA = 'AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz'; // from PRIVATE+KEY+PeterNeumann+c74f20a3+…
const ENOCH_VKEY = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop';
const GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_LINE = '— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
const ENOCH_LINE = '— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n';
const GO_NOTE = `${GO_TEXT}\n${PETER_LINE}`;

const peterSeed = fromB64(PETER_SKEY_DATA)!.subarray(1);
const enochSeed = new Uint8Array(32);

describe('signed-note known answers (Go sumdb/note)', () => {
  it('parses and re-formats the verifier keys', () => {
    const v = parseVerifierKey(PETER_VKEY);
    expect(v.name).toBe('PeterNeumann');
    expect(v.keyId).toBe(0xc74f20a3);
    expect(formatVerifierKey(v.name, v.publicKey)).toBe(PETER_VKEY);
    expect(formatVerifierKey('PeterNeumann', publicKeyFromSeed(peterSeed))).toBe(PETER_VKEY);
    expect(formatVerifierKey('EnochRoot', publicKeyFromSeed(enochSeed))).toBe(ENOCH_VKEY);
    expect(ed25519KeyId('EnochRoot', publicKeyFromSeed(enochSeed))).toBe(0xaf0cfe78);
  });

  it('opens the example note', () => {
    const n = openNote(GO_NOTE, [parseVerifierKey(PETER_VKEY)]);
    expect(n.text).toBe(GO_TEXT);
    expect(n.verified.map((s) => [s.name, s.keyId])).toEqual([['PeterNeumann', 0xc74f20a3]]);
    expect(n.unverified).toEqual([]);
    expect(openNote(utf8(GO_NOTE), [parseVerifierKey(PETER_VKEY)]).text).toBe(GO_TEXT);
  });

  it('signs byte for byte like the reference, alone and with a second key', () => {
    const peter = ed25519NoteSignerFromSeed('PeterNeumann', peterSeed);
    const enoch = ed25519NoteSignerFromSeed('EnochRoot', enochSeed);
    expect(signNote(GO_TEXT, peter)).toBe(GO_NOTE);
    const both = signNote(GO_TEXT, [peter, enoch]);
    expect(both).toBe(`${GO_TEXT}\n${PETER_LINE}${ENOCH_LINE}`);
    const n = openNote(both, [parseVerifierKey(ENOCH_VKEY)]);
    expect(n.verified.map((s) => s.name)).toEqual(['EnochRoot']);
    expect(n.unverified.map((s) => [s.name, s.keyId])).toEqual([['PeterNeumann', 0xc74f20a3]]);
    expect(openNote(both, [parseVerifierKey(ENOCH_VKEY), parseVerifierKey(PETER_VKEY)]).verified).toHaveLength(2);
  });
});

describe('verifier keys', () => {
  const pub = publicKeyFromSeed(peterSeed);
  const keyData = toB64(new Uint8Array([1, ...pub]));

  it.each<[string, string, NoteErrorCode]>([
    ['wrong key id', `PeterNeumann+c74f20a4+${keyData}`, 'KEY_ID_MISMATCH'],
    ['key id of another name', `PeterNeumanm+c74f20a3+${keyData}`, 'KEY_ID_MISMATCH'],
    ['upper-case key id', `PeterNeumann+C74F20A3+${keyData}`, 'MALFORMED_VERIFIER_KEY'],
    ['short key id', `PeterNeumann+c74f20a+${keyData}`, 'MALFORMED_VERIFIER_KEY'],
    ['no key data', 'PeterNeumann+c74f20a3+', 'MALFORMED_VERIFIER_KEY'],
    ['missing parts', 'PeterNeumann', 'MALFORMED_VERIFIER_KEY'],
    ['bad base64', `PeterNeumann+c74f20a3+${keyData.slice(1)}`, 'MALFORMED_VERIFIER_KEY'],
    ['31-byte key', `PeterNeumann+c74f20a3+${toB64(new Uint8Array([1, ...pub.subarray(1)]))}`, 'MALFORMED_VERIFIER_KEY'],
    ['other signature type', `PeterNeumann+c74f20a3+${toB64(new Uint8Array([4, ...pub]))}`, 'UNSUPPORTED_KEY_TYPE'],
    ['name with a space', `Peter Neumann+c74f20a3+${keyData}`, 'INVALID_KEY_NAME'],
    ['name with a no-break space', `Peter\u00a0Neumann+c74f20a3+${keyData}`, 'INVALID_KEY_NAME'],
    ['empty name', `+c74f20a3+${keyData}`, 'INVALID_KEY_NAME'],
  ])('rejects %s', (_desc, vkey, code) => {
    expect(codeOf(() => parseVerifierKey(vkey))).toBe(code);
  });

  it('checks key names when formatting and signing', () => {
    expect(isValidKeyName('example.com/log42')).toBe(true);
    expect(isValidKeyName('a+b')).toBe(false);
    expect(isValidKeyName('a\u2003b')).toBe(false);
    expect(isValidKeyName('a\u0001b')).toBe(false);
    expect(isValidKeyName('\ud800')).toBe(false);
    expect(codeOf(() => formatVerifierKey('a+b', pub))).toBe('INVALID_KEY_NAME');
    expect(codeOf(() => formatVerifierKey('ok', pub.subarray(1)))).toBe('MALFORMED_VERIFIER_KEY');
    expect(codeOf(() => ed25519NoteSigner('has space', pub, () => new Uint8Array(64)))).toBe('INVALID_KEY_NAME');
  });
});

describe('signed notes', () => {
  const kp = generateEd25519();
  const signer = ed25519NoteSignerFromSeed('example.com/log', kp.seed);
  const verifier = parseVerifierKey(formatVerifierKey('example.com/log', kp.publicKey));
  const other = generateEd25519();
  const otherSigner = ed25519NoteSignerFromSeed('example.com/witness', other.seed);
  const otherVerifier = ed25519NoteVerifier('example.com/witness', other.publicKey);
  const text = 'line one\n\nline three after an empty line\n';
  const note = signNote(text, signer);
  const open = (n: string | Uint8Array, vs: readonly NoteVerifier[] = [verifier]): NoteErrorCode | 'OK' =>
    codeOf(() => openNote(n, vs));

  it('round-trips, with an empty line inside the text', () => {
    const n = openNote(note, [verifier]);
    expect(n.text).toBe(text);
    expect(n.verified).toHaveLength(1);
    expect(n.verified[0]!.signature).toHaveLength(64);
  });

  it('ignores unknown keys but needs one known valid signature', () => {
    const cosigned = signNote(text, [signer, otherSigner]);
    const n = openNote(cosigned, [verifier]);
    expect(n.unverified.map((s) => s.name)).toEqual(['example.com/witness']);
    expect(open(cosigned, [otherVerifier])).toBe('OK');
    expect(open(cosigned, [])).toBe('NO_VERIFIED_SIGNATURE');
    expect(open(note, [otherVerifier])).toBe('NO_VERIFIED_SIGNATURE');
  });

  it('counts a repeated signature line once', () => {
    const sigLine = note.slice(text.length + 1);
    const witnessLine = signNote(text, otherSigner).slice(text.length + 1);
    const n = openNote(`${note}${witnessLine}${sigLine}${witnessLine}`, [verifier]);
    expect(n.verified).toHaveLength(1);
    expect(n.unverified.map((s) => s.name)).toEqual(['example.com/witness']);
  });

  it('rejects a changed byte of the text', () => {
    expect(open(note.replace('line one', 'line One'))).toBe('SIGNATURE_INVALID');
    expect(open(note.replace('three', 'three '))).toBe('SIGNATURE_INVALID');
  });

  it('treats a wrong key name or key id as an unknown key', () => {
    expect(open(note.replace('— example.com/log ', '— example.com/log2 '))).toBe('NO_VERIFIED_SIGNATURE');
    const [head, sigLine = ''] = note.split('— ');
    const raw = fromB64(sigLine.split(' ')[1]!.trim())!;
    raw[0]! ^= 0x01;
    expect(open(`${head}— example.com/log ${toB64(raw)}\n`)).toBe('NO_VERIFIED_SIGNATURE');
    // The same line is ignored (reported unverified) when another known key signed.
    const withGood = `${text}\n— example.com/log ${toB64(raw)}\n${signNote(text, otherSigner).slice(text.length + 1)}`;
    const n = openNote(withGood, [verifier, otherVerifier]);
    expect(n.verified.map((s) => s.name)).toEqual(['example.com/witness']);
    expect(n.unverified.map((s) => s.name)).toEqual(['example.com/log']);
  });

  it('rejects a signature of the wrong length by a known key', () => {
    const blob = toB64(new Uint8Array([...u32be(verifier.keyId), ...new Uint8Array(63)]));
    expect(open(`${text}\n— example.com/log ${blob}\n`)).toBe('SIGNATURE_INVALID');
  });

  it.each<[string, (n: string) => string, NoteErrorCode]>([
    ['missing trailing newline', (n) => n.slice(0, -1), 'MALFORMED_NOTE'],
    ['no blank line before signatures', (n) => n.replace('\n\n—', '\n—'), 'MALFORMED_NOTE'],
    ['bad base64 (dropped character)', (n) => n.replace(/=\n$/, '\n'), 'MALFORMED_NOTE'],
    ['bad base64 (URL alphabet)', (n) => n.replace(/ [A-Za-z0-9+/](\S+)\n$/, ' -$1\n'), 'MALFORMED_NOTE'],
    ['non-canonical base64 bits', (n) => n.replace(/([A-Za-z0-9+/])=\n$/, (_m, c: string) => `${nextB64(c)}=\n`), 'MALFORMED_NOTE'],
    ['hyphen instead of em dash', (n) => n.replace('— ', '- '), 'MALFORMED_NOTE'],
    ['en dash instead of em dash', (n) => n.replace('— ', '\u2013 '), 'MALFORMED_NOTE'],
    ['two spaces after the name', (n) => n.replace('example.com/log ', 'example.com/log  '), 'MALFORMED_NOTE'],
    ['no signature after the name', (n) => n.replace(/ [A-Za-z0-9+/=]+\n$/, '\n'), 'MALFORMED_NOTE'],
    ['trailing blank line', (n) => `${n}\n`, 'MALFORMED_NOTE'],
    ['no signatures', (n) => n.slice(0, n.indexOf('—')), 'MALFORMED_NOTE'],
    ['carriage return', (n) => n.replace('line one\n', 'line one\r\n'), 'MALFORMED_NOTE'],
    ['tab', (n) => n.replace('line one', 'line\tone'), 'MALFORMED_NOTE'],
    ['lone surrogate', (n) => n.replace('line one', 'line \ud800'), 'MALFORMED_NOTE'],
    ['short signature blob', (n) => n.replace(/ [A-Za-z0-9+/=]+\n$/, ' AAAAAA==\n'), 'MALFORMED_NOTE'],
  ])('rejects a note with %s', (_desc, mutate, code) => {
    const bad = mutate(note);
    expect(bad).not.toBe(note);
    expect(open(bad)).toBe(code);
  });

  it('rejects invalid UTF-8 bytes', () => {
    const bytes = utf8(note);
    const bad = new Uint8Array([...bytes.subarray(0, 3), 0xff, ...bytes.subarray(3)]);
    expect(open(bad)).toBe('MALFORMED_NOTE');
    expect(open(bytes)).toBe('OK');
  });

  it('accepts 16 unknown signatures and caps the count', () => {
    const unknown = Array.from({ length: 16 }, (_, i) => `— other${i} ${toB64(new Uint8Array(68).fill(i))}\n`).join('');
    expect(open(`${note}${unknown}`)).toBe('OK');
    const many = Array.from({ length: 100 }, (_, i) => `— other${i} ${toB64(new Uint8Array(68).fill(i))}\n`).join('');
    expect(open(`${note}${many}`)).toBe('TOO_MANY_SIGNATURES');
    expect(codeOf(() => openNote(`${note}${unknown}`, [verifier], { maxSignatures: 16 }))).toBe('TOO_MANY_SIGNATURES');
  });

  it('refuses two different trusted keys with one name and key id', () => {
    const fake: NoteVerifier = { ...verifier, publicKey: other.publicKey, verify: () => true };
    expect(open(note, [verifier, fake])).toBe('AMBIGUOUS_KEY');
    expect(open(note, [verifier, parseVerifierKey(formatVerifierKey('example.com/log', kp.publicKey))])).toBe('OK');
  });

  it('refuses to sign malformed text', () => {
    expect(codeOf(() => signNote('no newline', signer))).toBe('MALFORMED_NOTE');
    expect(codeOf(() => signNote('bell\u0007\n', signer))).toBe('MALFORMED_NOTE');
    expect(codeOf(() => signNote('ok\n', []))).toBe('MALFORMED_NOTE');
  });
});

describe('checkpoints', () => {
  const root = new Uint8Array(32).map((_, i) => i * 7);
  const kp = generateEd25519();
  const origin = 'meterproof.example/log';
  const signer = ed25519NoteSignerFromSeed(origin, kp.seed);
  const vkey = formatVerifierKey(origin, kp.publicKey);

  it('formats the tlog-checkpoint body', () => {
    expect(formatCheckpoint({ origin, size: 0n, rootHash: root })).toBe(`${origin}\n0\n${toB64(root)}\n`);
    expect(formatCheckpoint({ origin, size: 12n, rootHash: root, extensions: ['ext a', 'ext b'] })).toBe(
      `${origin}\n12\n${toB64(root)}\next a\next b\n`,
    );
  });

  it('parses the C2SP example body and re-formats it exactly', () => {
    const body = 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';
    const cp = parseCheckpoint(body);
    expect(cp.origin).toBe('example.com/behind-the-sofa');
    expect(cp.size).toBe(20852163n);
    expect(cp.extensions).toEqual([]);
    expect(formatCheckpoint(cp)).toBe(body);
    // The spec's signature line, by a key we do not know, is ignored next to ours.
    const specLine =
      '— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n';
    const ours = signNote(body, signer).slice(body.length + 1);
    const opened = openCheckpoint(`${body}\n${specLine}${ours}`, [parseVerifierKey(vkey)]);
    expect(opened.checkpoint.size).toBe(20852163n);
    expect(opened.note.unverified.map((s) => [s.name, s.keyId])).toEqual([['example.com/behind-the-sofa', 0x033de0ae]]);
  });

  it('round-trips a signed checkpoint through the published verifier key', () => {
    const size = 2n ** 63n + 5n;
    const note = signCheckpoint({ origin, size, rootHash: root, extensions: ['x'] }, signer);
    const { checkpoint, note: opened } = openCheckpoint(note, [parseVerifierKey(vkey)], { origin });
    expect(checkpoint.origin).toBe(origin);
    expect(checkpoint.size).toBe(size);
    expect(toB64(checkpoint.rootHash)).toBe(toB64(root));
    expect(checkpoint.extensions).toEqual(['x']);
    expect(opened.verified.map((s) => s.name)).toEqual([origin]);
    expect(codeOf(() => openCheckpoint(note, [parseVerifierKey(vkey)], { origin: 'other.example/log' }))).toBe(
      'ORIGIN_MISMATCH',
    );
  });

  it('rejects tampering with a signed checkpoint', () => {
    const note = signCheckpoint({ origin, size: 12n, rootHash: root }, signer);
    const v = [parseVerifierKey(vkey)];
    const open = (n: string): NoteErrorCode | 'OK' => codeOf(() => openCheckpoint(n, v));
    expect(open(note)).toBe('OK');
    expect(open(note.replace('\n12\n', '\n13\n'))).toBe('SIGNATURE_INVALID');
    expect(open(note.replace('\n12\n', '\n012\n'))).toBe('SIGNATURE_INVALID');
    // A correctly signed body with a non-canonical size is still refused.
    const body = `${origin}\n012\n${toB64(root)}\n`;
    expect(open(signNote(body, signer))).toBe('MALFORMED_CHECKPOINT');
  });

  const rootB64 = toB64(root);
  it.each<[string, string]>([
    ['leading zero', `o\n012\n${rootB64}\n`],
    ['plus sign', `o\n+12\n${rootB64}\n`],
    ['negative size', `o\n-1\n${rootB64}\n`],
    ['space after size', `o\n12 \n${rootB64}\n`],
    ['size 2^64', `o\n18446744073709551616\n${rootB64}\n`],
    ['huge size', `o\n${'9'.repeat(40)}\n${rootB64}\n`],
    ['empty origin', `\n12\n${rootB64}\n`],
    ['31-byte root', `o\n12\n${toB64(root.subarray(1))}\n`],
    ['33-byte root', `o\n12\n${toB64(new Uint8Array(33))}\n`],
    ['unpadded root', `o\n12\n${rootB64.replace(/=$/, '')}\n`],
    ['non-canonical root bits', `o\n12\n${rootB64.slice(0, -2)}${nextB64(rootB64.at(-2)!)}=\n`],
    ['URL-safe root', `o\n12\n${toB64(new Uint8Array(32).fill(0xfb)).replace(/\+/g, '-')}\n`],
    ['two lines', `o\n12\n`],
    ['empty extension line', `o\n12\n${rootB64}\n\next\n`],
    ['missing final newline', `o\n12\n${rootB64}`],
    ['carriage return', `o\r\n12\n${rootB64}\n`],
  ])('parseCheckpoint rejects %s', (_desc, text) => {
    expect(codeOf(() => parseCheckpoint(text))).toBe('MALFORMED_CHECKPOINT');
  });

  it('parseCheckpoint accepts the extremes of the format', () => {
    expect(parseCheckpoint(`o\n0\n${rootB64}\n`).size).toBe(0n);
    expect(parseCheckpoint(`o\n18446744073709551615\n${rootB64}\n`).size).toBe(2n ** 64n - 1n);
    expect(parseCheckpoint(`o r+igin\n1\n${rootB64}\na\nb\n`).extensions).toEqual(['a', 'b']);
  });

  it.each<[string, Parameters<typeof formatCheckpoint>[0]]>([
    ['a negative size', { origin, size: -1n, rootHash: root }],
    ['a size past uint64', { origin, size: 2n ** 64n, rootHash: root }],
    ['a 31-byte root', { origin, size: 1n, rootHash: root.subarray(1) }],
    ['an empty origin', { origin: '', size: 1n, rootHash: root }],
    ['an origin with a newline', { origin: 'a\nb', size: 1n, rootHash: root }],
    ['an empty extension', { origin, size: 1n, rootHash: root, extensions: [''] }],
    ['a control character', { origin: 'a\u0000', size: 1n, rootHash: root }],
  ])('formatCheckpoint rejects %s', (_desc, cp) => {
    expect(codeOf(() => formatCheckpoint(cp))).toBe('MALFORMED_CHECKPOINT');
  });
});

/** The base64 digit after `c`, so that a final digit carries non-zero padding bits. */
function nextB64(c: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  return alphabet[(alphabet.indexOf(c) + 1) % 64]!;
}

function u32be(n: number): number[] {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}
