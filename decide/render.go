package decide

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"seg":     url.PathEscape,
	"percent": percent,
	"num":     func(x float64) string { return strconv.FormatFloat(x, 'g', 4, 64) },
	"when":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"inc":     func(n int) int { return n + 1 },
	"join":    strings.Join,
}).ParseFS(templateFS, "templates/*.html"))

// render writes page name with data and status code; a template error is
// an internal error, written before anything else.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, code int, name string, data pageData) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		h.log.Error("decide: rendering", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}
