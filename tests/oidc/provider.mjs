// A real OpenID Connect provider for the browser tests: node's oidc-provider on 127.0.0.1.
//
// Configured by the environment only (the secret never on a command line):
//   OIDC_TEST_PORT           port to listen on (127.0.0.1)
//   OIDC_TEST_CLIENT_ID      the service's client id
//   OIDC_TEST_CLIENT_SECRET  its secret
//   OIDC_TEST_REDIRECT_URI   the service's callback (…/oidc/callback/)
//   OIDC_TEST_POST_LOGOUT_REDIRECT_URI  where signing out comes back to (…/signed-out/)
// Anyone may log in with any password (oidc-provider's development interactions); the login
// typed is the account's e-mail address and subject. Signing out of the service ends the
// session here too (RP-initiated logout at /session/end, after a confirmation form). Prints
// "listening <issuer>" when ready.
import Provider from "oidc-provider";

const port = Number(process.env.OIDC_TEST_PORT);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.OIDC_TEST_CLIENT_ID,
      client_secret: process.env.OIDC_TEST_CLIENT_SECRET,
      redirect_uris: [process.env.OIDC_TEST_REDIRECT_URI],
      post_logout_redirect_uris: [process.env.OIDC_TEST_POST_LOGOUT_REDIRECT_URI],
      response_types: ["code"],
      grant_types: ["authorization_code"],
      token_endpoint_auth_method: "client_secret_post",
    },
  ],
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name", "given_name", "family_name"],
  },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: id,
          email_verified: true,
          name: "Ann Analyst",
          given_name: "Ann",
          family_name: "Analyst",
        };
      },
    };
  },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  cookies: { keys: ["browser-tests-only"] },
});

const server = provider.listen(port, "127.0.0.1", () => {
  console.log(`listening ${issuer}`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
