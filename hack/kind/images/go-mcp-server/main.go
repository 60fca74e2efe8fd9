// A stdio-only MCP server for the e2e suite, built from the official Go SDK into a static
// binary that is the image's ENTRYPOINT (scratch: no shell, no Node, no Python). Its tools
// are deterministic, so a test can check a call's result, and "exit" ends the process, so a
// test can watch the kubelet restart it behind the stdio proxy.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type addArgs struct {
	A int64 `json:"a" jsonschema:"first addend"`
	B int64 `json:"b" jsonschema:"second addend"`
}

type echoArgs struct {
	Text string `json:"text" jsonschema:"text to return"`
}

type exitArgs struct {
	Code int `json:"code" jsonschema:"exit status of the process"`
}

func text(value string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: value}}}
}

func main() {
	// The image's CMD (or the MCPServer's args) arrive here: the greeting proves they did.
	greeting := strings.Join(os.Args[1:], " ")
	server := mcp.NewServer(&mcp.Implementation{Name: "devserver-go-stdio", Version: "1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "add", Description: "Adds two integers"},
		func(_ context.Context, _ *mcp.CallToolRequest, in addArgs) (*mcp.CallToolResult, any, error) {
			return text(fmt.Sprint(in.A + in.B)), nil, nil
		})
	mcp.AddTool(server, &mcp.Tool{Name: "echo", Description: "Returns the text, after the process arguments"},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
			return text(strings.TrimSpace(greeting + " " + in.Text)), nil, nil
		})
	mcp.AddTool(server, &mcp.Tool{Name: "exit", Description: "Ends the server process without answering"},
		func(_ context.Context, _ *mcp.CallToolRequest, in exitArgs) (*mcp.CallToolResult, any, error) {
			os.Exit(in.Code)
			return nil, nil, nil
		})
	if err := server.Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		log.Printf("server ended: %v", err)
	}
}
