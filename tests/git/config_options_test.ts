import assert from "node:assert/strict";
import { configKeyError, GrpcError, parseConfigOptions, Status } from "../../mod.ts";

Deno.test("parseConfigOptions() splits at the first '=' and keeps order, empty values and '=' in values", () => {
  assert.deepEqual(parseConfigOptions([]), []);
  assert.deepEqual(parseConfigOptions(["a.b=", "a.b=c=d", "uploadpack.hideRefs=refs/hidden", "=x"]), [
    { key: "a.b", value: "" },
    { key: "a.b", value: "c=d" },
    { key: "uploadpack.hideRefs", value: "refs/hidden" },
    { key: "", value: "x" },
  ]);
});

Deno.test("parseConfigOptions() refuses an option without '=' as Gitaly does (INVALID_ARGUMENT, Go-quoted)", () => {
  for (const [option, quoted] of [["foo", '"foo"'], ["", '""'], ['a"b\n', '"a\\"b\\n"']]) {
    assert.throws(() => parseConfigOptions(["ok.key=1", option!]), (e: unknown) => {
      assert.ok(e instanceof GrpcError);
      assert.equal(e.code, Status.INVALID_ARGUMENT);
      assert.equal(e.details, `cannot convert invalid config key: ${quoted}`);
      return true;
    });
  }
});

Deno.test("configKeyError() applies Gitaly's GitConfig.Validate rules (its regexp lets later parts hold dots)", () => {
  for (
    const key of [
      "core.gc",
      "uploadpack.allowFilter",
      "a.b.c",
      "http.https://example.com/.extraHeader",
      "x.y*z",
      "A1.b-c_d:e@f/g",
    ]
  ) {
    assert.equal(configKeyError(key), undefined, key);
  }
  const cases: [string, string][] = [
    ["", "not set"],
    ["a=b", 'key "a=b" cannot contain "="'],
    ["core", 'key "core" must contain at least one section'],
    [".core", 'key ".core" must not start or end with a dot'],
    ["core.", 'key "core." must not start or end with a dot'],
    ["a b.c", 'key "a b.c" failed regexp validation'],
    ["a.b c", 'key "a.b c" failed regexp validation'],
    ["-a.b", 'key "-a.b" failed regexp validation'],
    ["ä.b", 'key "ä.b" failed regexp validation'],
  ];
  for (const [key, reason] of cases) {
    assert.equal(
      configKeyError(key),
      `invalid configuration key ${JSON.stringify(key)}: key: ${reason}`,
      key,
    );
  }
});
