// Gives the harness a Node 22 fs API (globSync) on Node 20; every other import is untouched.
export async function resolve(specifier, context, next) {
  const fromHarness = (context.parentURL ?? "").includes("@modelcontextprotocol/conformance");
  if (fromHarness && (specifier === "fs" || specifier === "node:fs")) {
    return { url: new URL("./fs-shim.mjs", import.meta.url).href, shortCircuit: true };
  }
  return next(specifier, context);
}
