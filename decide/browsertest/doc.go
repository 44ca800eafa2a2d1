// Package browsertest drives the decision page of package decide in a real
// browser: Debian's chromium, through chromedp, against a real
// deploy.Runner and store. It is a module of its own so that chromedp and
// its protocol packages stay out of the deploy module's go.mod: users who
// import decide, or deploy, never download them.
//
// Run it with
//
//	cd decide/browsertest && go test ./...
//
// It needs /usr/bin/chromium (apt-get install -y chromium; .ci/run installs
// it) and fails, saying so, without it.
package browsertest
