package main

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
)

func inspectFor(id, name string, labels map[string]string, links []string, mode string) container.InspectResponse {
	return container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: id, Name: "/" + name, HostConfig: &container.HostConfig{Links: links, NetworkMode: container.NetworkMode(mode)}},
		Config:            &container.Config{Labels: labels},
	}
}

func TestDependencies(t *testing.T) {
	dbID := strings.Repeat("d", 64)
	all := []container.InspectResponse{
		inspectFor(dbID, "db", nil, nil, "bridge"),
		inspectFor(strings.Repeat("a", 64), "web", map[string]string{labelDependsOn: "cache, db"}, []string{"/db:/web/db"}, "bridge"),
		inspectFor(strings.Repeat("b", 64), "sidecar", nil, nil, "container:"+dbID),
		inspectFor(strings.Repeat("c", 64), "cache", nil, nil, "bridge"),
		inspectFor(strings.Repeat("e", 64), "proj-api-1", map[string]string{labelComposeProject: "proj", labelComposeService: "api", labelComposeDepends: "queue:service_started:false,store:service_healthy:true"}, nil, "proj_default"),
		inspectFor(strings.Repeat("f", 64), "proj-queue-1", map[string]string{labelComposeProject: "proj", labelComposeService: "queue"}, nil, "proj_default"),
		inspectFor(strings.Repeat("1", 64), "proj-store-1", map[string]string{labelComposeProject: "proj", labelComposeService: "store"}, nil, "proj_default"),
		inspectFor(strings.Repeat("2", 64), "other-queue-1", map[string]string{labelComposeProject: "other", labelComposeService: "queue"}, nil, "other_default"),
	}
	g := buildGraph(all)
	for name, want := range map[string][]string{
		"web":          {"db", "cache"},
		"sidecar":      {"db"},
		"db":           nil,
		"proj-api-1":   {"proj-queue-1", "proj-store-1"},
		"proj-queue-1": nil,
	} {
		if got := g[name]; !reflect.DeepEqual(got, want) {
			t.Errorf("%s depends on %v, want %v", name, got, want)
		}
	}
	if got := g.dependents([]string{"db"}); !reflect.DeepEqual(got, []string{"sidecar", "web"}) {
		t.Errorf("dependents of db: %v", got)
	}
}

func TestOrderGroups(t *testing.T) {
	g := dependencyGraph{
		"web": {"db", "cache"}, "db": nil, "cache": {"db"}, // one chain
		"lone": nil, "other": nil, // independent
		"a": {"b"}, "b": {"c"}, "c": {"a"}, // a cycle
		"d":    {"a"}, // depends on the cycle, but is not on it
		"self": {"self"},
	}
	groups, cycles := g.orderGroups([]string{"web", "db", "cache", "lone", "other", "a", "b", "c", "d", "self"})
	got := fmt.Sprint(groups)
	if got != "[[db cache web] [d] [lone] [other]]" {
		t.Errorf("groups %s", got)
	}
	if fmt.Sprint(cycles["a"]) != "[a b c]" || fmt.Sprint(cycles["self"]) != "[self]" || len(cycles) != 4 {
		t.Errorf("cycles %v", cycles)
	}
}
