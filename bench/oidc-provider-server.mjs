// Benchmark peer for Keyway: a minimal node `oidc-provider` that issues JWT
// access tokens via client_credentials (client_secret_post). The resource
// indicator defaults to OP_RESOURCE, so a request without `resource` still
// gets a JWT (audience = that resource, scope 'api').
//
// Usage: node oidc-provider-server.mjs [PORT]   (or env OP_PORT; default 3000)
// Env:   OP_CLIENT_ID / OP_CLIENT_SECRET  override the single client's credentials
//        OP_RESOURCE                      the fixed resource (JWT audience)
//        OP_ALG                           access-token signing alg: RS256 (default),
//                                         PS256, ES256 or EdDSA
//        OP_VERBOSE=1                     keep oidc-provider's notices/warnings
// Listens on 127.0.0.1 only, plain HTTP (keep-alive is Node's default), and
// prints `oidc-provider listening on http://127.0.0.1:PORT` when ready.

import http from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';

const port = Number(process.argv[2] || process.env.OP_PORT || 3000);
const host = '127.0.0.1';
const issuer = `http://${host}:${port}`;
const clientId = process.env.OP_CLIENT_ID || 'bench-client';
const clientSecret = process.env.OP_CLIENT_SECRET || 'bench-secret-0123456789abcdef0123456789abcdef';
const resource = process.env.OP_RESOURCE || 'https://api.bench.example/';

if (!process.env.OP_VERBOSE) {
  // "Logs off": oidc-provider prints development notices via console.info/warn.
  console.info = () => {};
  console.warn = () => {};
}
// Imported after silencing so its import-time notices (e.g. the Node.js LTS
// check) are dropped too.
const { default: Provider } = await import('oidc-provider');

const alg = process.env.OP_ALG || 'RS256';
const keyParams = {
  RS256: ['rsa', { modulusLength: 2048 }],
  PS256: ['rsa', { modulusLength: 2048 }],
  ES256: ['ec', { namedCurve: 'P-256' }],
  EdDSA: ['ed25519', {}],
}[alg];
if (!keyParams) {
  process.stderr.write(`unsupported OP_ALG ${alg}\n`);
  process.exit(2);
}
// A fresh signing key (avoids the provider's built-in development keys).
const { privateKey } = generateKeyPairSync(...keyParams);
const jwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg, kid: 'bench-1' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      token_endpoint_auth_method: 'client_secret_post',
      grant_types: ['client_credentials'],
      response_types: [],
      id_token_signed_response_alg: alg, // unused, but must match an available key
      redirect_uris: [],
    },
  ],
  jwks: { keys: [jwk] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => resource,
      getResourceServerInfo: async (_ctx, resourceIndicator) => ({
        scope: 'api',
        accessTokenFormat: 'jwt',
        audience: resourceIndicator,
        accessTokenTTL: 3600,
        jwt: { sign: { alg } },
      }),
    },
  },
  ttl: {
    ClientCredentials: 3600,
  },
});
provider.proxy = false;
// No error logging to the console (koa logs server errors by default).
provider.silent = true;

const server = http.createServer(provider.callback());
server.keepAliveTimeout = 65_000;
server.listen(port, host, () => {
  process.stdout.write(`oidc-provider listening on ${issuer}\n`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
