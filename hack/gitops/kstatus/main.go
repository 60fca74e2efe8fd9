// kstatus prints what sigs.k8s.io/cli-utils' kstatus library (the code Flux's health checks
// and kpt run) computes for Kubernetes objects. The project's tests judge every status the
// operator writes with it, instead of trusting a re-implementation of kstatus' rules.
//
// Usage: kstatus [FILE...]   (no FILE: standard input)
//
// Each input holds one or more objects as JSON or YAML (documents separated by "---");
// a List (`kubectl get -o json`) counts as its items. The output is one JSON array with an
// entry per object, in input order: {"kind", "name", "status", "message"}, or "error" when
// kstatus refuses the object. The exit code is 0 whenever the input could be read: a
// refused object is a result to judge, not a failure of the tool.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
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

func main() {
	inputs := os.Args[1:]
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
		computed, err := status.Compute(obj)
		if err != nil {
			entry.Error = err.Error()
		} else {
			entry.Status = computed.Status.String()
			entry.Message = computed.Message
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
	fmt.Fprintf(os.Stderr, "kstatus: %s: %v\n", what, err)
	os.Exit(1)
}
