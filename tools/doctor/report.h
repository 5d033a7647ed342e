// Report: how tcpx-doctor prints. Each check is a line with a mark; a failed
// check carries the action that fixes it, so the output can be acted on
// without reading code.
#ifndef TCPX_TOOLS_DOCTOR_REPORT_H_
#define TCPX_TOOLS_DOCTOR_REPORT_H_

#include <cstdio>
#include <string>

namespace tcpx::doctor {

class Report {
 public:
  explicit Report(FILE* out) : out_(out) {}
  void section(const std::string& title) { std::fprintf(out_, "\n== %s ==\n", title.c_str()); }
  void info(const std::string& line) { std::fprintf(out_, "       %s\n", line.c_str()); }
  void ok(const std::string& what) { std::fprintf(out_, "  [ OK ] %s\n", what.c_str()); }
  // Not a problem for the data path that will be used, but worth knowing.
  void note(const std::string& what) { std::fprintf(out_, "  [NOTE] %s\n", what.c_str()); }
  void fail(const std::string& what, const std::string& fix) {
    std::fprintf(out_, "  [FAIL] %s\n", what.c_str());
    if (!fix.empty()) std::fprintf(out_, "         fix: %s\n", fix.c_str());
  }
  void line(const std::string& text) { std::fprintf(out_, "%s\n", text.c_str()); }

 private:
  FILE* out_;
};

}  // namespace tcpx::doctor

#endif  // TCPX_TOOLS_DOCTOR_REPORT_H_
