import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    // tests/workers/ runs inside workerd: vitest.workers.config.ts
    exclude: [...configDefaults.exclude, "tests/workers/**"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
