import { project } from '../../vitest.shared.js';

export default project('core', {
  // Type tests (test/*.test-d.ts): what a user's job must and must not compile to.
  typecheck: { enabled: true, include: ['test/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
});
