// Package deploy holds no code: its directory holds the deployment files
// (systemd units, Kubernetes manifests; the Dockerfile and compose.yaml are at
// the repository root) and its tests validate them with what runs here:
// systemd-analyze, strict decoding into the Kubernetes API types, a parse of
// the compose file, a static build of the binary. docs/deploy.md says what
// cannot be run here.
package deploy
