// The documentation stands on its own (issue 19, point 7): every relative link in README.md and
// docs/ resolves to a file of the repository, every #anchor to a heading of its target, and no
// document or source comment cites a file that lives outside the repository.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');

/** README.md and every other Markdown file at the top level, and every Markdown file under docs/. */
function markdownFiles(): string[] {
  const top = fs.readdirSync(ROOT).filter((f) => f.endsWith('.md'));
  const docs = fs
    .readdirSync(path.join(ROOT, 'docs'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.md'))
    .map((f) => path.join('docs', f));
  return [...top, ...docs].sort();
}

/** The text outside fenced code blocks, line by line (a fence's lines become empty). */
function prose(text: string): string[] {
  let fence: string | null = null;
  return text.split('\n').map((line) => {
    const m = /^\s*(`{3,}|~{3,})/.exec(line);
    if (m) {
      if (fence === null) fence = m[1]![0]!.repeat(m[1]!.length);
      else if (m[1]!.startsWith(fence)) fence = null;
      return '';
    }
    return fence === null ? line : '';
  });
}

/** GitHub's anchor for a heading: its text lowercased, punctuation dropped, spaces to hyphens;
 *  a repeated anchor gets -1, -2, … */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const line of prose(markdown)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const text = m[1]!.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/[`*]/g, '');
    const base = text.toLowerCase().replace(/[^\p{L}\p{M}\p{N}_\- ]/gu, '').replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** The targets of inline links and images, and of reference definitions, outside code. */
function linksOf(markdown: string): string[] {
  const targets: string[] = [];
  for (const raw of prose(markdown)) {
    const line = raw.replace(/`[^`]*`/g, 'code');
    for (const m of line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) targets.push(m[1]!);
    const def = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/.exec(line);
    if (def) targets.push(def[1]!);
  }
  return targets;
}

/** What is wrong with one link of `file`, or null. */
function brokenLink(file: string, target: string): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return null; // https:, mailto:: not a file of ours
  const hash = target.indexOf('#');
  const rel = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
  const anchor = hash < 0 ? null : decodeURIComponent(target.slice(hash + 1));
  const resolved = rel === '' ? path.join(ROOT, file) : path.resolve(ROOT, path.dirname(file), rel);
  const inRepo = path.relative(ROOT, resolved);
  if (inRepo.startsWith('..') || path.isAbsolute(inRepo)) return `${target}: outside the repository`;
  if (!fs.existsSync(resolved)) return `${target}: no such file`;
  if (anchor === null) return null;
  if (!resolved.endsWith('.md')) return `${target}: an anchor into a file that is not Markdown`;
  if (!anchorsOf(fs.readFileSync(resolved, 'utf8')).has(anchor)) return `${target}: no heading with that anchor`;
  return null;
}

/** Citations of documents that are not in the repository (a design document, a shared folder). */
const OUTSIDE = [/\bDESIGN(\.md|\s*§)/, /\.\.\/shared\b/, /\bseeds\//];

function outsideReferences(file: string): string[] {
  const lines = fs.readFileSync(path.join(ROOT, file), 'utf8').split('\n');
  return lines.flatMap((line, i) => (OUTSIDE.some((re) => re.test(line)) ? [`${file}:${i + 1}: ${line.trim()}`] : []));
}

function sourceFiles(dir: string): string[] {
  return fs
    .readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.(ts|mjs|js)$/.test(f))
    .map((f) => path.join(dir, f));
}

describe('documentation links', () => {
  it('finds links and anchors the way GitHub renders them', () => {
    const md = [
      '# The meterproof protocol',
      '## 7. What a redacted bundle reveals',
      '### Where the CPU goes: `npm run bench:store`',
      '## Health, readiness and shutdown',
      '## Notes',
      '## Notes',
      '```sh',
      '# not a heading [nor](a-link.md)',
      '```',
      'See [`bench:store`](#where-the-cpu-goes-npm-run-benchstore), `[code](not-a-link.md)` and',
      '[the API](api.md#errors "title"), <https://example.com>.',
      '[ref]: operations.md#metrics',
    ].join('\n');
    expect([...anchorsOf(md)]).toEqual([
      'the-meterproof-protocol',
      '7-what-a-redacted-bundle-reveals',
      'where-the-cpu-goes-npm-run-benchstore',
      'health-readiness-and-shutdown',
      'notes',
      'notes-1',
    ]);
    expect(linksOf(md)).toEqual(['#where-the-cpu-goes-npm-run-benchstore', 'api.md#errors', 'operations.md#metrics']);
  });

  it('reports a missing file, a missing anchor and a path out of the repository', () => {
    expect(brokenLink('README.md', 'docs/no-such-file.md')).toMatch(/no such file/);
    expect(brokenLink('README.md', 'docs/operations.md#no-such-heading')).toMatch(/no heading/);
    expect(brokenLink('docs/api.md', '../../shared/STYLE.md')).toMatch(/outside the repository/);
    expect(brokenLink('docs/api.md', 'operations.md#metrics')).toBeNull();
    expect(brokenLink('README.md', 'https://c2sp.org/tlog-checkpoint')).toBeNull();
  });

  const files = markdownFiles();

  it('covers README.md and the docs', () => {
    expect(files).toContain('README.md');
    expect(files).toContain(path.join('docs', 'protocol.md'));
  });

  it.each(files)('every relative link of %s resolves, anchors included', (file) => {
    const broken = linksOf(fs.readFileSync(path.join(ROOT, file), 'utf8'))
      .map((target) => brokenLink(file, target))
      .filter((problem) => problem !== null);
    expect(broken).toEqual([]);
  });

  it('no document or source comment cites a file outside the repository', () => {
    const problems = [...files, ...sourceFiles('src'), ...sourceFiles('scripts'), ...sourceFiles('bin')].flatMap(outsideReferences);
    expect(problems).toEqual([]);
  });
});
