// Sign-in: the organisation's identity provider (OpenID Connect with PKCE) in production;
// in development mode also a list of synthetic demo users.

import { api } from "../api.js";
import { h } from "../dom.js";
import { orgName, t } from "../i18n.js";
import { errorBox, heading, statusArea } from "./common.js";

export async function signinView(ctx) {
  const { main, config } = ctx;
  const status = statusArea();
  main.append(heading(t("signin.title")), h("p", { class: "lead", text: t("app.tagline") }));
  const earlier = ctx.signinError();
  if (earlier) main.append(h("div", { class: "error", role: "alert" }, h("p", { text: earlier })));
  main.append(status);

  if (config.oidc) {
    main.append(h("section", { class: "card", "aria-labelledby": "signin-oidc" },
      h("h2", { id: "signin-oidc", text: t("signin.oidc.title") }),
      h("p", { text: t("signin.oidc.help") }),
      h("button", {
        type: "button",
        onclick: async () => {
          try {
            await ctx.beginSignIn(config.oidc);
          } catch (error) {
            console.error(error);
            status.show(h("p", { class: "error", text: t("signin.failed") }));
          }
        },
        text: t("signin.oidc.button"),
      })));
  }

  if (config.dev) {
    const list = h("ul", { class: "demo-users" });
    main.append(h("section", { class: "card", "aria-labelledby": "signin-demo" },
      h("h2", { id: "signin-demo", text: t("signin.demo.title") }),
      h("p", { text: t("signin.demo.help") }), list));
    let users = [];
    try {
      users = (await api("GET", "/api/v1/dev/users")).items;
    } catch (error) {
      status.show(errorBox(error));
    }
    for (const user of users) {
      const roles = user.roles.map((r) => t(`role.${r}`)).join(", ");
      list.append(h("li", {}, h("button", {
        type: "button",
        class: "demo-user",
        dataset: { user: user.id },
        onclick: async () => {
          try {
            const { token } = await api("POST", "/api/v1/dev/token", { user_id: user.id });
            await ctx.signedIn(token, "dev");
          } catch (error) {
            status.show(errorBox(error));
          }
        },
      }, h("span", { class: "demo-name", text: user.name }), h("span", { class: "demo-meta", text: `${orgName(user.org)} · ${roles}` }))));
    }
  }

  if (!config.oidc && !config.dev) main.append(h("p", { class: "error", text: t("signin.none") }));
}
