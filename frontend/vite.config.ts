import react from '@vitejs/plugin-react';
import type { ProxyOptions } from 'vite';
import { defineConfig } from 'vitest/config';

// `npm run dev` talks to `opentracy serve` on its default port. Open the link serve prints once
// (cookies ignore ports, so the UI cookie for 127.0.0.1 also reaches the dev server), then use
// http://127.0.0.1:5173.
const backend = 'http://127.0.0.1:8787';

const toBackend: ProxyOptions = {
  target: backend,
  // The server answers only to its own Host and Origin (DNS-rebinding and CSRF guards).
  changeOrigin: true,
  configure: (proxy) => {
    proxy.on('proxyReq', (request) => {
      if (request.getHeader('origin')) request.setHeader('origin', backend);
    });
  },
};

export default defineConfig({
  plugins: [react()],
  server: {
    host: '127.0.0.1',
    proxy: {
      '/api': toBackend,
      '/v1': toBackend,
      '/healthz': toBackend,
    },
  },
  build: {
    outDir: 'dist',
    // public/.gitkeep is copied back in, so dist/ never disappears from git.
    emptyOutDir: true,
  },
  test: {
    environment: 'jsdom',
    setupFiles: ['./src/test/setup.ts'],
    include: ['src/**/*.test.{ts,tsx}'],
  },
});
