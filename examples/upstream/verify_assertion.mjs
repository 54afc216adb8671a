// Verify riskgate's X-Riskgate-Assertion in a Node service, with `jose` (npm install jose@5).
//
// Reads one JSON job on stdin: {"jwks_url", "token", "body", "issuer", "audience"}
// ("body" is the request body, as a string or an object; leave it out for a view)
// and prints the verified claims as JSON, or {"error": "<code>"} with exit status 1.
// docs/upstream-integration.md explains every check and each error code.
import { createHash, timingSafeEqual } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';

const ALLOWED_HEADER = new Set(['alg', 'kid', 'typ']);
const AMOUNT = /^(0|[1-9][0-9]{0,14})(\.[0-9]{1,2})?$/;
const LEEWAY = 5; // seconds of clock skew tolerated on iat/exp
const MAX_LIFETIME = 60; // exp - iat

class Refusal extends Error {
  constructor(code) {
    super(code);
    this.code = code;
  }
}

// One remote key set per gateway, created once per process: jose caches the keys
// (cacheMaxAge), refetches on an unknown kid at most once per cooldownDuration.
const keySets = new Map();
function gatewayKeys(url) {
  if (!keySets.has(url)) {
    const remote = createRemoteJWKSet(new URL(url), { cooldownDuration: 10_000, cacheMaxAge: 300_000 });
    keySets.set(url, async (header, token) => {
      try {
        return await remote(header, token);
      } catch (err) {
        if (err.code === 'ERR_JWKS_NO_MATCHING_KEY' || err.code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') {
          throw new Refusal('assertion_unknown_key');
        }
        throw new Refusal('jwks_unavailable'); // network error, timeout, not 200, not a JWKS
      }
    });
  }
  return keySets.get(url);
}

// Single use of jti, in this process only: production needs storage every
// instance shares, written in the same transaction as the operation.
const seenJti = new Map();
function useOnce(jti, expiresAt, now) {
  for (const [old, exp] of seenJti) if (exp < now) seenJti.delete(old);
  if (seenJti.has(jti)) return false;
  seenJti.set(jti, expiresAt);
  return true;
}

export function canonicalAmount(value) {
  if (Number.isSafeInteger(value) && value >= 0) return `${value}.00`;
  const match = typeof value === 'string' ? AMOUNT.exec(value) : null;
  if (!match) throw new Refusal('invalid_body');
  return `${match[1]}.${(match[2] || '.').slice(1).padEnd(2, '0')}`;
}

// The canonical transaction of a transfer body (the reference API's field names),
// keys in sorted order, no whitespace; SHA-256, lowercase hex.
export function transferHash(body) {
  let doc = body;
  if (typeof body === 'string') {
    try {
      doc = JSON.parse(body);
    } catch {
      throw new Refusal('invalid_body');
    }
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new Refusal('invalid_body');
  const txn = {
    action: 'transfer',
    amount: canonicalAmount(doc.amount),
    currency: doc.currency ?? 'CNY',
    from: doc.from_account ?? '',
    payee: doc.payee_account ?? '',
  };
  if (![txn.currency, txn.from, txn.payee].every((v) => typeof v === 'string')) throw new Refusal('invalid_body');
  return createHash('sha256').update(JSON.stringify(txn), 'utf8').digest('hex');
}

function refusalOf(err) {
  if (err instanceof Refusal) return err;
  switch (err.code) {
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return new Refusal('assertion_bad_signature');
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return new Refusal('assertion_algorithm_refused');
    case 'ERR_JWT_EXPIRED':
      return new Refusal('assertion_expired');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (err.claim === 'iss') return new Refusal('assertion_wrong_issuer');
      if (err.claim === 'aud') return new Refusal('assertion_wrong_audience');
      if ((err.claim === 'iat' || err.claim === 'nbf') && err.reason === 'check_failed') {
        return new Refusal('assertion_not_yet_valid');
      }
      return new Refusal('assertion_malformed');
    default:
      return new Refusal('assertion_malformed');
  }
}

export async function verifyAssertion({ jwks_url: jwksUrl, token, body, issuer, audience }) {
  if (typeof token !== 'string' || !token) throw new Refusal('assertion_missing');
  if (token.length > 8192 || token.split('.').length !== 3) {
    throw new Refusal('assertion_malformed');
  }
  let header;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    throw new Refusal('assertion_malformed');
  }
  if (header.alg !== 'ES256') throw new Refusal('assertion_algorithm_refused');
  if (typeof header.kid !== 'string' || !header.kid || !Object.keys(header).every((k) => ALLOWED_HEADER.has(k))) {
    throw new Refusal('assertion_malformed');
  }
  let claims;
  try {
    ({ payload: claims } = await jwtVerify(token, gatewayKeys(jwksUrl), {
      issuer,
      audience,
      algorithms: ['ES256'],
      maxTokenAge: MAX_LIFETIME,
      clockTolerance: LEEWAY,
      requiredClaims: ['iat', 'exp', 'jti', 'sub'],
    }));
  } catch (err) {
    throw refusalOf(err);
  }
  if (!Number.isInteger(claims.iat) || !Number.isInteger(claims.exp) || claims.exp <= claims.iat) {
    throw new Refusal('assertion_malformed');
  }
  if (claims.exp - claims.iat > MAX_LIFETIME) throw new Refusal('assertion_lifetime_too_long');
  if (body !== undefined && body !== null) {
    if (typeof claims.txn?.hash !== 'string') throw new Refusal('assertion_txn_missing');
    const expected = Buffer.from(transferHash(body));
    const signed = Buffer.from(claims.txn.hash.toLowerCase());
    if (expected.length !== signed.length || !timingSafeEqual(expected, signed)) {
      throw new Refusal('assertion_txn_mismatch');
    }
  }
  if (!useOnce(claims.jti, claims.exp + LEEWAY, Date.now() / 1000)) throw new Refusal('assertion_replayed');
  return claims;
}

async function main() {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  try {
    const claims = await verifyAssertion(JSON.parse(input));
    process.stdout.write(JSON.stringify(claims) + '\n');
  } catch (err) {
    const { code } = refusalOf(err);
    process.stdout.write(JSON.stringify({ error: code }) + '\n');
    process.exitCode = 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
