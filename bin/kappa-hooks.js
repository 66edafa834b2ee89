// Module hooks the `kappa` command registers after tsx (see kappa.js), so they run before it:
//
//   - A TypeScript file of the user's (a .ts or .tsx outside node_modules: kappa.config.ts and what it
//     imports) is loaded as an ES module, whatever its package.json says. A config is an ES module
//     (`export default defineApp(...)`), but a folder where `npm install kappa` wrote the
//     package.json has no "type": "module", and tsx would then load the file as CommonJS, which
//     Node 20.19+ refuses with "Cannot require() ES Module … in a cycle".
//   - From a clone of the repository (data.root: its file URL), `import … from 'kappa'` and
//     'kappa/<subpath>' that reach this clone resolve with the "kappa-source" export condition, which
//     package.json maps to the TypeScript sources in src/; the installed package maps the same
//     imports to the compiled dist/. An import that reaches another copy of Kappa (a project with its
//     own installed package) is left as it is.
let root = null;

export function initialize(data) {
  root = data?.root ?? null;
}

export async function resolve(specifier, context, nextResolve) {
  if (root === null || (specifier !== 'kappa' && !specifier.startsWith('kappa/')))
    return nextResolve(specifier, context);
  // Node merges the context a hook passes on into the one it was given: keep the conditions apart.
  const conditions = context.conditions;
  try {
    const found = await nextResolve(specifier, { ...context, conditions: [...conditions, 'kappa-source'] });
    if (found.url.startsWith(root)) return found;
  } catch {
    // Another copy of Kappa, without src/: resolved below as Node would.
  }
  return nextResolve(specifier, { ...context, conditions });
}

export async function load(url, context, nextLoad) {
  if (url.startsWith('file:') && /\.tsx?$/.test(new URL(url).pathname) && !url.includes('/node_modules/'))
    return nextLoad(url, { ...context, format: 'module' });
  return nextLoad(url, context);
}
