// ESLint for the TypeScript of lib/, bench/, test/ and scripts/ (npm run lint; Prettier does the layout: npm run
// format). typescript-eslint's recommended rules, with the project's few conventions below.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['dist/', 'build/', 'build-*/', 'node_modules/', 'prebuilds/', 'test/fixtures/', 'bench/work/', 'vbp-demo/', '**/*.js', '**/*.mjs', '**/*.cjs'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // A leading underscore marks what is left unused on purpose (a rest sibling, a callback's argument).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      // Lines Prettier cannot break: long strings and template literals (messages), URLs and regular expressions.
      'max-len': ['error', { code: 120, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreUrls: true }],
      eqeqeq: ['error', 'always'],
      'prefer-const': 'error',
    },
  },
);
