// Package modgraph has tests only: they keep the root module light. The
// root module's graph must hold no module of the heavy integrations (pgx,
// client_golang, River), which live in modules of their own, and a
// program that imports only deploy, strategy (for Direct) and state must
// compile no OpenFeature, murmur3, pgx, client_golang or River package.
// See MODULES.md.
package modgraph
