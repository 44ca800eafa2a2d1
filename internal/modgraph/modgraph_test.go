package modgraph_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// heavy are module path prefixes that belong to the nested modules only.
var heavy = []string{
	"github.com/jackc/pgx",
	"github.com/prometheus/client_golang",
	"github.com/prometheus/common",
	"github.com/riverqueue/",
}

// goCmd runs the go command of the toolchain running the test in the root
// module's directory, outside any workspace.
func goCmd(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), args...)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	out, err := cmd.Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg += ": " + string(ee.Stderr)
		}
		t.Fatalf("go %s: %s", strings.Join(args, " "), msg)
	}
	return string(out)
}

// TestRootModuleGraphHoldsNoHeavyIntegration fails when the root go.mod
// requires, directly or not, a module of pgx, client_golang or River:
// every importer of deploykit would get it in its module graph.
func TestRootModuleGraphHoldsNoHeavyIntegration(t *testing.T) {
	graph := goCmd(t, "mod", "graph")
	for _, line := range strings.Split(graph, "\n") {
		for _, h := range heavy {
			if strings.Contains(line, h) {
				t.Errorf("the root module graph holds %s: %q; it belongs in a nested module (MODULES.md)", h, line)
			}
		}
	}
}

// TestMinimalProgramCompilesNoHeavyPackage: a program that uses deploy,
// strategy.Direct and state (testdata/minimal) compiles no OpenFeature or
// murmur3 (progressive.Strategy lives apart) and no pgx, client_golang or
// River.
func TestMinimalProgramCompilesNoHeavyPackage(t *testing.T) {
	deps := goCmd(t, "list", "-deps", "./internal/modgraph/testdata/minimal")
	banned := append([]string{"github.com/open-feature/", "github.com/twmb/murmur3", "github.com/deploykit/deploy/flags"}, heavy...)
	n := 0
	for _, p := range strings.Fields(deps) {
		n++
		for _, b := range banned {
			if strings.HasPrefix(p, b) {
				t.Errorf("the minimal program compiles %s", p)
			}
		}
	}
	if n < 10 {
		t.Fatalf("go list -deps listed %d packages: %q", n, deps)
	}
}
