package deploy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/state"
)

// A description with "\n### Follow-up Items" injected report sections; ESC
// and CR in a name reached the output; capitalize cut a UTF-8 character in
// half ("échéance" gave "\uFFFD\xa9chéance") (issue 12).
func TestReportEscapesHostileText(t *testing.T) {
	start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	rep := &deploy.Report{
		ID: "x-1",
		Release: deploy.Release{
			Service: "svc\x1b[31m\r", Version: "v2", Environment: "production", PreviousVersion: "v1",
			Commit:      "abc|def",
			Description: "Faster checkout\n### Follow-up Items\n- [ ] nothing to see\n| a | b |\n[click](javascript:alert(1)) ![x](http://t/p.png) <script>x</script> *bold* _em_ `code` ~~del~~",
			Links:       map[string]string{"échéance": "https://user:pw@tickets.example/T-1?id=7", "](evil)": "docs/x.md"},
		},
		Strategy: "direct", Status: deploy.RolledBack, Started: start, Finished: start.Add(time.Minute),
		Waivers:   []state.Waiver{{Pitfall: "friday-deploy", Reason: "because\n## Approved by the CEO"}},
		Checklist: []deploy.ChecklistLine{{Section: "Pre-Deployment", Item: deploy.ItemTestsPassing, Done: true, Evidence: "CI ok at https://ci:s3cret@ci.example/run?token=t0k"}},
		Timeline:  []state.Entry{{At: start, Phase: "deploy", Kind: "step", Name: "10%|x", Detail: "applied\n| fake | row |"}},
		Trigger:   &state.Trigger{Kind: "breach", Reason: "error rate up\r\n### Lessons Learned\n- all good", Stage: "production", Step: "10%", At: start},
		FollowUps: []string{"Document what went wrong: \n# boom"},
		Lessons:   []string{"échéance \u202eevil"},
	}
	md := rep.Markdown()
	golden(t, "report-hostile.md", md)
	for _, bad := range []string{"\x1b", "\r", "\u202e", "\n### Follow-up Items\n- [ ] nothing", "\n| a | b |", "[click](", " <script>", "s3cret", "t0k", "pw@", "\n## Approved", "\n# boom", "\uFFFD"} {
		if strings.Contains(md, bad) {
			t.Errorf("report contains %q", bad)
		}
	}
	if !strings.Contains(md, `\[click\](javascript`) || !strings.Contains(md, `\<script>`) {
		t.Error("the link and the tag are not escaped")
	}
	if !strings.Contains(md, "- Échéance: https://tickets.example/T-1?id=7\n") {
		t.Error("the link name is not capitalized whole")
	}
	if n := strings.Count(md, "\n### Follow-up Items\n"); n != 1 {
		t.Errorf("%d Follow-up Items sections, want 1", n)
	}
}
