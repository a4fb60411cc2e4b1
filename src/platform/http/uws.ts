/**
 * uWebSockets.js, and proof that it is the native build. The npm package we
 * use silently falls back to a slow pure-JS server when its binary does not
 * load; Stampede refuses to run on that fallback.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import uWS from 'uWebSockets.js';

export { uWS };

export function nativeBinaryPath(): string {
  const require = createRequire(import.meta.url);
  const pkgMain = require.resolve('uWebSockets.js');
  return join(dirname(pkgMain), '..', 'binaries', `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
}

/** True when the loaded module is the native addon for this platform and Node ABI. */
export function isNativeUws(): boolean {
  const require = createRequire(import.meta.url);
  try {
    return require(nativeBinaryPath()) === uWS || require('uWebSockets.js') === require(nativeBinaryPath());
  } catch {
    return false;
  }
}

export function assertNativeUws(): void {
  if (!isNativeUws()) {
    throw new Error(
      `uWebSockets.js native binary did not load (${nativeBinaryPath()}); refusing to run on the slow JS fallback. ` +
        `Check the Node.js version (ABI ${process.versions.modules}) and glibc, or set STAMPEDE_REQUIRE_NATIVE_UWS=false to override.`,
    );
  }
}
