// plan.go owns the order of an update: which containers depend on which (links, the depends-on
// label, container: network mode, Compose's depends_on), which dependents must restart with an
// updated container, the independent groups that may proceed concurrently, and the cycles.
package main

import (
	"slices"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/container"
)

const (
	labelDependsOn      = labelPrefix + ".depends-on"
	labelComposeDepends = "com.docker.compose.depends_on"
	labelComposeProject = "com.docker.compose.project"
	labelComposeService = "com.docker.compose.service"
)

// dependencies returns the names of the containers c depends on. idToName resolves container IDs
// (for container: network mode); services maps "project/service" to container names.
func dependencies(c container.InspectResponse, idToName map[string]string, services map[string][]string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		n = strings.TrimPrefix(strings.TrimSpace(n), "/")
		if n != "" && !seen[n] && "/"+n != c.Name {
			seen[n] = true
			out = append(out, n)
		}
	}
	if c.HostConfig != nil {
		for _, l := range c.HostConfig.Links {
			// inspect reports links as "/db:/web/db".
			name, _, _ := strings.Cut(l, ":")
			add(name)
		}
		if mode := string(c.HostConfig.NetworkMode); strings.HasPrefix(mode, "container:") {
			ref := strings.TrimPrefix(mode, "container:")
			if n, ok := idToName[ref]; ok {
				ref = n
			}
			add(ref)
		}
	}
	if c.Config != nil {
		for _, n := range strings.Split(c.Config.Labels[labelDependsOn], ",") {
			add(n)
		}
		project := c.Config.Labels[labelComposeProject]
		for _, entry := range strings.Split(c.Config.Labels[labelComposeDepends], ",") {
			// Compose writes "service:condition:restart".
			svc, _, _ := strings.Cut(strings.TrimSpace(entry), ":")
			for _, n := range services[project+"/"+svc] {
				add(n)
			}
		}
	}
	return out
}

// dependencyGraph is who depends on whom among a host's containers, by name.
type dependencyGraph map[string][]string

// buildGraph collects the dependencies of every container.
func buildGraph(all []container.InspectResponse) dependencyGraph {
	idToName := map[string]string{}
	services := map[string][]string{}
	for _, c := range all {
		name := strings.TrimPrefix(c.Name, "/")
		idToName[c.ID] = name
		if len(c.ID) >= 12 {
			idToName[c.ID[:12]] = name
		}
		if c.Config != nil && c.Config.Labels[labelComposeService] != "" {
			key := c.Config.Labels[labelComposeProject] + "/" + c.Config.Labels[labelComposeService]
			services[key] = append(services[key], name)
		}
	}
	g := dependencyGraph{}
	for _, c := range all {
		g[strings.TrimPrefix(c.Name, "/")] = dependencies(c, idToName, services)
	}
	return g
}

// dependents returns the containers that depend, directly or through others, on any of names.
func (g dependencyGraph) dependents(names []string) []string {
	rev := map[string][]string{}
	for n, deps := range g {
		for _, d := range deps {
			rev[d] = append(rev[d], n)
		}
	}
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	queue := append([]string(nil), names...)
	var out []string
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, d := range rev[n] {
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
				queue = append(queue, d)
			}
		}
	}
	sort.Strings(out)
	return out
}

// orderGroups splits nodes into groups with no dependency between them, each in dependency order
// (dependencies first), and sets apart the nodes on a cycle, each with the cycle it is on.
func (g dependencyGraph) orderGroups(nodes []string) (groups [][]string, cycles map[string][]string) {
	in := map[string]bool{}
	for _, n := range nodes {
		in[n] = true
	}
	cycles = map[string][]string{}
	for _, scc := range g.cycles(nodes, in) {
		for _, n := range scc {
			cycles[n] = scc
		}
	}
	// Undirected components of what is left.
	parent := map[string]string{}
	var find func(string) string
	find = func(x string) string {
		if parent[x] != x {
			parent[x] = find(parent[x])
		}
		return parent[x]
	}
	var rest []string
	for _, n := range nodes {
		if _, bad := cycles[n]; !bad {
			parent[n] = n
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	for _, n := range rest {
		for _, d := range g[n] {
			if _, ok := parent[d]; ok {
				parent[find(n)] = find(d)
			}
		}
	}
	members := map[string][]string{}
	var roots []string
	for _, n := range rest {
		r := find(n)
		if members[r] == nil {
			roots = append(roots, r)
		}
		members[r] = append(members[r], n)
	}
	for _, r := range roots {
		groups = append(groups, g.topo(members[r]))
	}
	return groups, cycles
}

// topo orders an acyclic set so that dependencies come first; ties go by name.
func (g dependencyGraph) topo(set []string) []string {
	in := map[string]bool{}
	for _, n := range set {
		in[n] = true
	}
	indeg := map[string]int{}
	rev := map[string][]string{}
	for _, n := range set {
		for _, d := range g[n] {
			if in[d] {
				indeg[n]++
				rev[d] = append(rev[d], n)
			}
		}
	}
	var ready, out []string
	for _, n := range set {
		if indeg[n] == 0 {
			ready = append(ready, n)
		}
	}
	for len(ready) > 0 {
		sort.Strings(ready)
		n := ready[0]
		ready = ready[1:]
		out = append(out, n)
		for _, m := range rev[n] {
			if indeg[m]--; indeg[m] == 0 {
				ready = append(ready, m)
			}
		}
	}
	return out
}

// cycles returns the strongly connected components of more than one node (or a node depending
// on itself) among the nodes in set, by Tarjan's algorithm.
func (g dependencyGraph) cycles(nodes []string, set map[string]bool) [][]string {
	index := map[string]int{}
	low := map[string]int{}
	onStack := map[string]bool{}
	var stack []string
	var out [][]string
	next := 0
	var visit func(string)
	visit = func(v string) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range g[v] {
			if !set[w] {
				continue
			}
			if _, seen := index[w]; !seen {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			var scc []string
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				scc = append(scc, w)
				if w == v {
					break
				}
			}
			if len(scc) > 1 || slices.Contains(g[v], v) {
				sort.Strings(scc)
				out = append(out, scc)
			}
		}
	}
	sorted := append([]string(nil), nodes...)
	sort.Strings(sorted)
	for _, n := range sorted {
		if _, seen := index[n]; !seen {
			visit(n)
		}
	}
	return out
}
