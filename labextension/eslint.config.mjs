// Lint for the labextension's TypeScript (run by `make test` through `npm run check`).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(js.configs.recommended, ...tseslint.configs.recommended, {
  files: ['src/**/*.{ts,tsx}'],
  rules: { '@typescript-eslint/no-explicit-any': 'error', eqeqeq: 'error' }
});
