/** rewire's version, from package.json (bundled into compiled executables). */
import pkg from '../package.json' with { type: 'json' };

export const version: string = pkg.version;
