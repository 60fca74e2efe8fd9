// argocd-health prints the health that Argo CD's application controller assigns to
// Kubernetes objects, given an argocd-cm ConfigMap as a user applies it. The project's
// tests run gitops/argocd/health.lua through it, so the script is judged by Argo CD's own
// Lua runtime (gopher-lua with Argo CD's sandbox and helpers), its reading of argocd-cm
// (resource.customizations, wildcards, the part-of=argocd label) and its health
// aggregation rules (a pending deletion, a script error), not by a stand-in.
//
// Usage: argocd-health ARGOCD_CM_FILE [FILE...]   (no FILE: standard input)
//
// Objects are JSON or YAML, one or many per input; a List counts as its items. The output
// is one JSON array with an entry per object, in input order: {"kind", "name", "status",
// "message"}, or "error" when Argo CD reports one (it then also says status Unknown) or no
// health check applies to the object.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/argoproj/argo-cd/gitops-engine/v3/pkg/health"
	log "github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"github.com/argoproj/argo-cd/v3/util/lua"
	"github.com/argoproj/argo-cd/v3/util/settings"
)

type result struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

// readObjects decodes every object of one input; a List is flattened so that the output of
// `kubectl get <kind> -o json` can be piped in as it is.
func readObjects(r io.Reader) ([]*unstructured.Unstructured, error) {
	decoder := utilyaml.NewYAMLOrJSONDecoder(bufio.NewReader(r), 4096)
	var objects []*unstructured.Unstructured
	for {
		var raw json.RawMessage
		if err := decoder.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return objects, nil
			}
			return nil, err
		}
		if len(raw) == 0 || string(raw) == "null" { // an empty YAML document
			continue
		}
		// Decoded as the API machinery decodes objects from the API server: whole numbers
		// become int64 (kstatus refuses a generation that is a float64).
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(raw); err != nil {
			return nil, err
		}
		if obj.IsList() {
			err := obj.EachListItem(func(item runtime.Object) error {
				objects = append(objects, item.(*unstructured.Unstructured))
				return nil
			})
			if err != nil {
				return nil, err
			}
			continue
		}
		objects = append(objects, obj)
	}
}

// resourceOverrides reads the overrides the way the application controller does: through
// Argo CD's SettingsManager, whose informers list argocd-cm from the API server. An
// in-memory clientset holding the file's ConfigMap stands in for the API server only, so a
// ConfigMap that Argo CD would not see (no app.kubernetes.io/part-of: argocd label, another
// name) or would not parse fails here too.
func resourceOverrides(path string) (lua.ResourceHealthOverrides, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var configMap corev1.ConfigMap
	if err := yaml.UnmarshalStrict(data, &configMap); err != nil {
		return nil, fmt.Errorf("not a ConfigMap: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // stops the informers
	manager := settings.NewSettingsManager(ctx, fake.NewClientset(&configMap), configMap.Namespace)
	overrides, err := manager.GetResourceOverrides()
	if err != nil {
		return nil, err
	}
	return lua.ResourceHealthOverrides(overrides), nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: argocd-health ARGOCD_CM_FILE [FILE...]")
		os.Exit(2)
	}
	// The settings manager narrates its informers at info level; only problems matter here.
	log.SetLevel(log.WarnLevel)
	overrides, err := resourceOverrides(os.Args[1])
	if err != nil {
		fail(os.Args[1], err)
	}

	inputs := os.Args[2:]
	var objects []*unstructured.Unstructured
	if len(inputs) == 0 {
		read, err := readObjects(os.Stdin)
		if err != nil {
			fail("standard input", err)
		}
		objects = read
	}
	for _, path := range inputs {
		file, err := os.Open(path)
		if err != nil {
			fail(path, err)
		}
		read, err := readObjects(file)
		_ = file.Close()
		if err != nil {
			fail(path, err)
		}
		objects = append(objects, read...)
	}

	results := make([]result, 0, len(objects))
	for _, obj := range objects {
		entry := result{Kind: obj.GetKind(), Name: obj.GetName()}
		// The call setApplicationHealth (controller/health.go) makes for every live resource.
		status, err := health.GetResourceHealth(obj, overrides)
		switch {
		case err != nil:
			entry.Error = err.Error()
		case status == nil:
			entry.Error = "no health check applies to " + obj.GroupVersionKind().String()
		}
		if status != nil {
			entry.Status = string(status.Status)
			entry.Message = status.Message
		}
		results = append(results, entry)
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetIndent("", "  ")
	if err := encoder.Encode(results); err != nil {
		fail("standard output", err)
	}
}

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "argocd-health: %s: %v\n", what, err)
	os.Exit(1)
}
