package monitor

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseJSONPath(t *testing.T) {
	for in, want := range map[string]string{
		"{$.data.ok}":              ".data.ok",
		"$.data.ok":                ".data.ok",
		"data.ok":                  ".data.ok",
		"{ $ }":                    "",
		"$.items[0]['error rate']": ".items[0].error rate",
		`$["a]b"].c-d`:             ".a]b.c-d",
		"$.résumé":                 ".résumé",
		"[2].x":                    "[2].x",
	} {
		p, err := parseJSONPath(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		got := ""
		for _, s := range p.steps {
			got += s.String()
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%q (-want +got):\n%s", in, d)
		}
	}
	for _, bad := range []string{"", "{}", "{$.a", "$.", "$.a[", "$.a[-1]", "$.a[*]", "$..a", "$.a[?(@.x)]", "$.a['x]", "$ a"} {
		if _, err := parseJSONPath(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
