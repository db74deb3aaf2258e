// Module hooks (node --import + module.register) that print every local
// module the process resolves, so a test can see what a command loads.
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (r.url.startsWith('file:')) process.stderr.write(`loaded ${r.url}\n`);
  return r;
}
