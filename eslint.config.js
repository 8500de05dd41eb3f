// ESLint for the browser app (web/js: plain ES modules, no build step) and the browser tests'
// Node helpers (tests/web/*.mjs). Run by tests/test_guard_rails.py: any finding fails the suite.
"use strict";

const js = require("@eslint/js");
const globals = require("globals");

const bugs = {
  "array-callback-return": "error",
  "eqeqeq": ["error", "smart"],
  "no-implicit-globals": "error",
  "no-promise-executor-return": "error",
  "no-self-compare": "error",
  "no-template-curly-in-string": "error",
  "no-unmodified-loop-condition": "error",
  "no-unreachable": "error",
  "no-unreachable-loop": "error",
  "no-unused-vars": ["error", { args: "after-used", caughtErrors: "none" }],
  "no-use-before-define": ["error", { functions: false, classes: false, variables: false }],
  "no-var": "error",
  "prefer-const": "error",
};

module.exports = [
  {
    linterOptions: { reportUnusedDisableDirectives: "error" },
  },
  {
    files: ["web/js/**/*.js"],
    ...js.configs.recommended,
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: { ...globals.browser },
    },
    rules: { ...js.configs.recommended.rules, ...bugs },
  },
  {
    files: ["tests/**/*.mjs"],
    ...js.configs.recommended,
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: { ...globals.node },
    },
    rules: { ...js.configs.recommended.rules, ...bugs },
  },
];
