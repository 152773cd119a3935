// Command dashboardcheck strict-decodes Grafana dashboard JSON files with Grafana's foundation SDK
// (the Go types Grafana generates from its own schemas) and prints, as one JSON document, what it
// found in each file: errors (unknown fields, wrong types, broken structure), warnings (panel options
// the schema marks required but Grafana fills with defaults when absent), and the Prometheus queries
// and datasource references as the model decoded them, for the Python test to check further.
//
// Usage: dashboardcheck FILE.json...   (exit status 0 whatever it found; 2 when a file cannot be read)
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

// missingRequired is the SDK's message for a field its schema requires that the input lacks.
const missingRequired = "required field is missing from input"

type query struct {
	Where string `json:"where"`
	Expr  string `json:"expr"`
}

type datasourceRef struct {
	Where string `json:"where"`
	Type  string `json:"type"`
	UID   string `json:"uid"`
}

type report struct {
	File        string          `json:"file"`
	Errors      []string        `json:"errors"`
	Warnings    []string        `json:"warnings"`
	Panels      int             `json:"panels"`
	Queries     []query         `json:"queries"`
	Datasources []datasourceRef `json:"datasources"`
}

// defaultedByGrafana: a missing required field inside a panel's options or field config, which
// Grafana's panel plugins fill from their defaults when the dashboard loads.
func defaultedByGrafana(err *cog.BuildError) bool {
	if err.Message != missingRequired {
		return false
	}
	return strings.Contains(err.Path, ".options") || strings.Contains(err.Path, ".fieldConfig")
}

func classify(r *report, err error) {
	var buildErrs cog.BuildErrors
	if !errors.As(err, &buildErrs) {
		r.Errors = append(r.Errors, err.Error())
		return
	}
	for _, buildErr := range buildErrs {
		if defaultedByGrafana(buildErr) {
			r.Warnings = append(r.Warnings, buildErr.Error())
		} else {
			r.Errors = append(r.Errors, buildErr.Error())
		}
	}
}

func ref(where string, source *common.DataSourceRef) datasourceRef {
	found := datasourceRef{Where: where}
	if source.Type != nil {
		found.Type = *source.Type
	}
	if source.Uid != nil {
		found.UID = *source.Uid
	}
	return found
}

func collectPanel(r *report, where string, panel dashboard.Panel) {
	r.Panels++
	if panel.Datasource != nil {
		r.Datasources = append(r.Datasources, ref(where, panel.Datasource))
	}
	for i, target := range panel.Targets {
		at := where + " target " + strconv.Itoa(i)
		promQuery, ok := target.(*prometheus.Dataquery)
		if !ok {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: not a Prometheus query (%T)", at, target))
			continue
		}
		if promQuery.RefId != nil {
			at = where + " target " + *promQuery.RefId
		}
		r.Queries = append(r.Queries, query{Where: at, Expr: promQuery.Expr})
		if promQuery.Datasource != nil {
			r.Datasources = append(r.Datasources, ref(at, promQuery.Datasource))
		}
	}
}

func check(path string) (report, error) {
	r := report{File: path, Errors: []string{}, Warnings: []string{}, Queries: []query{}, Datasources: []datasourceRef{}}
	raw, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	var strict dashboard.Dashboard
	if err := strict.UnmarshalJSONStrict(raw); err != nil {
		classify(&r, err)
	}
	// The strict pass drops a panel with any finding, warnings included; the queries and datasource
	// references are read from the SDK's ordinary decoding of the same model.
	var board dashboard.Dashboard
	if err := json.Unmarshal(raw, &board); err != nil {
		r.Errors = append(r.Errors, err.Error())
		return r, nil
	}
	for _, item := range board.Panels {
		if item.Panel != nil {
			collectPanel(&r, "panel "+strconv.Quote(title(item.Panel.Title)), *item.Panel)
		}
		if item.RowPanel != nil {
			r.Panels++
			if item.RowPanel.Datasource != nil {
				r.Datasources = append(r.Datasources, ref("row "+strconv.Quote(title(item.RowPanel.Title)), item.RowPanel.Datasource))
			}
			for _, panel := range item.RowPanel.Panels {
				collectPanel(&r, "panel "+strconv.Quote(title(panel.Title)), panel)
			}
		}
	}
	for _, variable := range board.Templating.List {
		where := "variable " + strconv.Quote(variable.Name)
		if variable.Datasource != nil {
			r.Datasources = append(r.Datasources, ref(where, variable.Datasource))
		}
		if variable.Type == "query" && variable.Query != nil {
			r.Queries = append(r.Queries, query{Where: where, Expr: variableQuery(*variable.Query)})
		}
	}
	for i, annotation := range board.Annotations.List {
		if annotation.Datasource != nil {
			r.Datasources = append(r.Datasources, ref("annotation "+strconv.Itoa(i), annotation.Datasource))
		}
	}
	return r, nil
}

func title(text *string) string {
	if text == nil {
		return ""
	}
	return *text
}

func variableQuery(value dashboard.StringOrMap) string {
	if value.String != nil {
		return *value.String
	}
	if text, ok := value.Map["query"].(string); ok {
		return text
	}
	return ""
}

func main() {
	plugins.RegisterDefaultPlugins()
	reports := []report{}
	for _, path := range os.Args[1:] {
		r, err := check(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "dashboardcheck: %v\n", err)
			os.Exit(2)
		}
		reports = append(reports, r)
	}
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	if err := out.Encode(map[string]any{"dashboards": reports}); err != nil {
		fmt.Fprintf(os.Stderr, "dashboardcheck: %v\n", err)
		os.Exit(2)
	}
}
