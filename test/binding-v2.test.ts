// The bn128-poseidon8-v2 test vector of docs/zk-binding.md §6.1, from the code: salted digests,
// fingerprint, statement digest and tag, tariff commitment, public signals, log leaf.
import { describe, expect, it } from 'vitest';
import { logLeafBytes, publicSignalsV2, statementTag, tariffCommitmentV2, tariffHashInputsV2 } from '../src/core/binding-v2.ts';
import { normalizeTariff } from '../src/core/attest.ts';
import { toHex } from '../src/core/bytes.ts';
import { tariffNumerics } from '../src/core/field.ts';
import { leafHash } from '../src/core/merkle.ts';
import { isV2 } from '../src/core/schemas.ts';
import { TEST_TARIFF_SALT, pilotBundle, pilotTariff } from './support/fixtures.ts';

describe('bn128-poseidon8-v2 test vector (docs/zk-binding.md §6.1)', () => {
  const { statement, statementDigest, bundle } = pilotBundle();
  if (!isV2(statement)) throw new Error('pilotBundle is v2');

  it('statement fields, digest and signature', () => {
    expect(statement.event_digest).toBe('sha256:28869e5e78ee61a8c63673b5bf4eef0cd8d886938ac9b7ed77b939cae1c3b33a');
    expect(statement.tariff_digest).toBe('sha256:9e952aa0a3da6a71f72b45beebc2d571bb7ef4c3e54f6975e964cb455ea2b914');
    expect(statement.billing_verify_fingerprint).toBe('sha256:591ed7cc8f40c2d492ad1ae5e707ababf1e072299d4bd6bda50ef6f304d1c646');
    expect(statement.chain).toEqual({
      id: 'sha256:210253614b69b7ef71f20d9a1ff58e210e3b64c269852ec1e0d174b5b5b3670b',
      seq: '0',
      prev: null,
      cumulative_units_before: '0',
      cumulative_units_after: '1842',
    });
    expect(statementDigest).toBe('sha256:ac76e56554b142972f05aac8e916bc7956a6ffd3fbc6332d089a60d55bd85309');
    expect(bundle.attestation.signature).toBe('gXj163FAPg8LM7AzGl_yiJDh2LaaaJupcVR0ODfQReNXeJzvFW94srxe_SHnHOXSCuIptKoXPeDyjCis7LvHCA');
  });

  it('statement tag, tariff commitment and the eleven public signals', async () => {
    expect(statementTag(statement)).toBe(304718285709972068969340062948313459083118055726529900275849005899190098003n);
    const tariff = normalizeTariff(pilotTariff);
    expect(tariffHashInputsV2(tariffNumerics(tariff), statement.tariff_digest, TEST_TARIFF_SALT)[0]).toBe(624542508830653094073237139877366541719039800882n);
    const commitment = await tariffCommitmentV2(tariff, TEST_TARIFF_SALT);
    expect(commitment).toBe(10780446078050480933471025937414696157358317141005281523284608696581773025811n);
    expect(publicSignalsV2(statement, commitment).map(String)).toEqual([
      '304718285709972068969340062948313459083118055726529900275849005899190098003',
      '53868099716031341829664349600195997452',
      '288237512743364924254339208077411332922',
      '210792540154357857990599285940399822193',
      '249224829044357708215741161467141077268',
      '1842',
      '0',
      '0',
      '1842',
      '221040',
      '10780446078050480933471025937414696157358317141005281523284608696581773025811',
    ]);
  });

  it('log leaf and its hash', () => {
    const leaf = logLeafBytes(statement);
    expect(Buffer.from(leaf).toString('utf8')).toBe(`{"statement_digest":"${statementDigest}","type":"meterproof/log-leaf/v2"}`);
    expect(toHex(leafHash(leaf))).toBe('78c7abd3fa521e2cca2e3a1fc668b4938d8208ca2216b7b3183cba8b22808e74');
  });
});
