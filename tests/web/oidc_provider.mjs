// A real OpenID Provider (the npm package oidc-provider) on loopback for the browser sign-in test:
// discovery, the authorization endpoint with its own login and consent pages, PKCE, and ES256
// JWT access tokens for the resource "consult" carrying Keycloak-style realm roles.
//
// A client allowed the refresh_token grant gets a refresh token with its code exchange (bound to
// the provider's session, like Keycloak's), rotated at every use (the default for a public client).
//
// usage: node tests/web/oidc_provider.mjs PORT REDIRECT_URI [ACCESS_TOKEN_SECONDS [REFRESH]]
//   (prints "ready" when listening; REFRESH "refresh" allows the refresh_token grant)
import { generateKeyPairSync } from "node:crypto";
import Provider from "oidc-provider";

const [port, redirectUri, ttl = "600", refresh = ""] = process.argv.slice(2);
const grantTypes = refresh === "refresh" ? ["authorization_code", "refresh_token"] : ["authorization_code"];
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const signingKey = { ...privateKey.export({ format: "jwk" }), kid: "op-key-1", alg: "ES256", use: "sig" };

// Synthetic staff: the login name is the account id (the token's sub).
const STAFF = {
  "kela.aino": { org: "kela", name: "Aino Neuvoja", roles: ["konsulta-advisor", "offline_access"] },
  "vantaa.sanna": { org: "vantaa", name: "Sanna Asiantuntija", roles: ["konsulta-expert"] },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: "konsulta-web",
    token_endpoint_auth_method: "none",
    redirect_uris: [redirectUri],
    grant_types: grantTypes,
    response_types: ["code"],
    id_token_signed_response_alg: "ES256",
  }],
  jwks: { keys: [signingKey] },
  pkce: { required: () => true },
  scopes: ["openid", "profile"],
  features: {
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => "urn:konsulta:api",
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: "openid profile",
        audience: "consult",
        accessTokenFormat: "jwt",
        accessTokenTTL: Number(ttl),
        jwt: { sign: { alg: "ES256" } },
      }),
    },
  },
  // A refresh token with the code exchange whenever the client may use that grant (not only for
  // the offline_access scope): it ends with the provider's session.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed("refresh_token"),
  async findAccount(_ctx, id) {
    return { accountId: id, async claims() { return { sub: id, name: STAFF[id]?.name ?? id }; } };
  },
  async extraTokenClaims(_ctx, token) {
    const person = STAFF[token.accountId];
    if (!person) return undefined;
    return { org: person.org, name: person.name, realm_access: { roles: person.roles } };
  },
  // Consent is the organisation's, not the user's: grant the app what it asks for.
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope("openid profile");
    grant.addResourceScope("urn:konsulta:api", "openid profile");
    await grant.save();
    return grant;
  },
});
provider.on("server_error", (_ctx, err) => console.error("server_error", err));
provider.listen(Number(port), "127.0.0.1", () => console.log("ready"));
