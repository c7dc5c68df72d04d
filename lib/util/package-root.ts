/** Where torch-vbp's own files are: the folder of its package.json. */
import fs from 'node:fs';
import path from 'node:path';

/** The folder of torch-vbp's package.json (from lib/ when run from source, dist/lib/ when compiled). */
export const packageRoot = ((): string => {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (
      fs.existsSync(manifest) &&
      (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: string }).name === 'torch-vbp'
    )
      return dir;
    if (path.dirname(dir) === dir) return path.resolve(__dirname, '..', '..', '..');
  }
})();
