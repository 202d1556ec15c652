package httpapi

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Every field name a handler reads (p.String("x"), p.Int, p.Strings,
// p.Object, and the optString/optInt/deviceID helpers) is in fieldKinds
// with the kind it is read as, so that bind checks its type.
func TestFieldKindsCoverHandlers(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	accessors := map[string]fieldKind{"String": kindString, "Int": kindInt, "Strings": kindStrings, "Object": kindObject,
		"optString": kindString, "optInt": kindInt}
	seen := 0
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			var fn string
			switch f := call.Fun.(type) {
			case *ast.SelectorExpr:
				if x, ok := f.X.(*ast.Ident); ok && x.Name == "p" {
					fn = f.Sel.Name
				}
			case *ast.Ident:
				fn = f.Name
			}
			kind, ok := accessors[fn]
			if !ok {
				return true
			}
			for _, arg := range call.Args {
				lit, ok := arg.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				field, _ := strconv.Unquote(lit.Value)
				seen++
				if got, ok := fieldKinds[field]; !ok || got != kind {
					t.Errorf("%s: %s(%q): fieldKinds has %v, want %v", fset.Position(lit.Pos()), fn, field, got, kind)
				}
			}
			return true
		})
	}
	if seen < 60 {
		t.Fatalf("found only %d field reads", seen)
	}
	// deviceID reads these; updateDataToken reads its meta fields by a loop.
	for _, f := range []string{"deviceIdentifier", "deviceId", "fileName", "extension", "context", "path"} {
		if fieldKinds[f] != kindString {
			t.Errorf("fieldKinds[%q] = %v, want a string", f, fieldKinds[f])
		}
	}
}
