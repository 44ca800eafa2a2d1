package decide_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/decide"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// Mount the page under /deploys of the deploy tool's server, for people
// who present a token: scripts as "Authorization: Bearer", browsers
// through the page's login form.
func Example() {
	store := state.NewMemory()
	runner, err := deploy.NewRunner(&deploytest.Strategy{Steps: deploytest.Ramp(0, 0.1, 1)},
		deploy.WithStore(store), deploy.WithMonitors(deploytest.Healthy()), deploy.WithNotifiers(&deploytest.Recorder{}),
		deploy.WithWaiver(deploy.FridayDeploy, "an example, at any hour"))
	if err != nil {
		log.Fatal(err)
	}
	auth, err := decide.Tokens(map[string]string{"a-long-random-token-for-ops": "ops"})
	if err != nil {
		log.Fatal(err)
	}
	page, err := decide.New(runner, store, auth)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/deploys/", http.StripPrefix("/deploys", page))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// A release starts (Start makes its record; Run or Resume would drive it).
	if _, err := runner.Start(context.Background(), deploy.Release{Service: "shop", Version: "v2", Environment: "production"}); err != nil {
		log.Fatal(err)
	}

	// A chat-ops bot lists what is running or waiting.
	req, _ := http.NewRequest("GET", srv.URL+"/deploys/api/releases", nil)
	req.Header.Set("Authorization", "Bearer a-long-random-token-for-ops")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	var list decide.List
	json.NewDecoder(res.Body).Decode(&list)
	for _, r := range list.Releases {
		fmt.Println(r.Service, r.Version, r.Environment, r.Status)
	}
	// Output:
	// shop v2 production running
}

// Trust the identity an authenticating proxy in front of the tool puts in
// a header, for requests that come through it.
func ExampleAuthorizerFunc() {
	auth := decide.AuthorizerFunc(func(r *http.Request) (string, error) {
		who := r.Header.Get("X-Forwarded-User")
		if who == "" || !strings.HasSuffix(who, "@example.com") {
			return "", fmt.Errorf("%w: no user from the proxy", decide.ErrUnauthorized)
		}
		return who, nil
	})
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Forwarded-User", "alice@example.com")
	fmt.Println(auth.Authorize(r))
	// Output:
	// alice@example.com <nil>
}
