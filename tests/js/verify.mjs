// Verify one Sigstore bundle with sigstore-js (@sigstore/verify), fully offline.
//
// Used by tests/test_sign.py to check that bundles the harness writes (and the
// conformance fixtures) verify with a second, independent Sigstore client.
//
//   node verify.mjs --bundle B.sigstore.json --key signer.pub.pem [--artifact FILE]
//   node verify.mjs --bundle B.sigstore.json --trusted-root trusted_root.json \
//                   --san IDENTITY --issuer OIDC_ISSUER [--artifact FILE]
//
// Prints one JSON line: {"ok": true, ...} (exit 0) or {"ok": false, "code", "error"}
// (exit 1). A key is looked up by the hint *computed here* from the PEM file
// (base64 sha256 of its DER SubjectPublicKeyInfo), so a bundle naming another key
// fails. Key-signed bundles without log entries or timestamps need thresholds of 0.
import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';

const EMPTY_ROOT = { certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [] };

function main() {
  const { values: opt } = parseArgs({
    options: {
      bundle: { type: 'string' },
      key: { type: 'string' },
      artifact: { type: 'string' },
      'trusted-root': { type: 'string' },
      san: { type: 'string' },
      issuer: { type: 'string' },
    },
  });
  if (!opt.bundle) throw new Error('--bundle is required');
  const bundle = bundleFromJSON(JSON.parse(readFileSync(opt.bundle, 'utf8')));
  const root = opt['trusted-root']
    ? TrustedRoot.fromJSON(JSON.parse(readFileSync(opt['trusted-root'], 'utf8')))
    : EMPTY_ROOT;

  const keys = {};
  let hint = null;
  if (opt.key) {
    const der = createPublicKey(readFileSync(opt.key)).export({ type: 'spki', format: 'der' });
    hint = createHash('sha256').update(der).digest('base64');
    keys[hint] = { rawBytes: der };
  }
  const keySigned = bundle.verificationMaterial.content.$case === 'publicKey';
  const thresholds = keySigned && !opt['trusted-root']
    ? { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }
    : {};
  const verifier = new Verifier(toTrustMaterial(root, keys), thresholds);
  const artifact = opt.artifact ? readFileSync(opt.artifact) : undefined;
  const policy = opt.san
    ? { subjectAlternativeName: opt.san, extensions: { issuer: opt.issuer } }
    : undefined;
  const signer = verifier.verify(toSignedEntity(bundle, artifact), policy);
  const identity = signer.identity
    ? { san: signer.identity.subjectAlternativeName, issuer: signer.identity.extensions?.issuer }
    : null;
  return { ok: true, keySigned, hint, identity };
}

try {
  console.log(JSON.stringify(main()));
} catch (err) {
  console.log(JSON.stringify({ ok: false, code: err.code ?? null, error: String(err.message ?? err) }));
  process.exit(1);
}
