// tf_predict: load a SavedModel the way TensorFlow Serving does (C++
// tensorflow::LoadSavedModel with tag "serve" -> SavedModelBundle), run one
// Predict-style request against a named SignatureDef, and emit the outputs.
//
// Usage:
//   tf_predict EXPORT_DIR REQUEST.pb [RESPONSE.pb] [--signature NAME]
//
// REQUEST.pb holds a serialized tensorflow.serving.PredictRequest.  The TF
// Serving protos are not part of the TensorFlow wheel, so the wire format is
// decoded by hand (it is tiny and stable):
//   PredictRequest { ModelSpec model_spec = 1;            // signature_name = 3
//                    map<string, TensorProto> inputs = 2;  // entry: key=1, value=2
//                    repeated string output_filter = 3; }
// Any other fields (client_id, request_options, ...) are skipped.
//
// RESPONSE.pb (optional) receives a serialized tensorflow.serving.PredictResponse:
//   PredictResponse { map<string, TensorProto> outputs = 1; ModelSpec model_spec = 2; }
// Outputs are also printed as text on stdout, one line per output alias:
//   <alias>\t<dtype>\t<shape>\t<values...>   (strings are C-escaped)
// Exit status: 0 ok, 1 usage, 2 load error, 3 request error, 4 run error.

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/map.h"
#include "google/protobuf/wire_format_lite.h"
#include "tensorflow/cc/saved_model/loader.h"
#include "tensorflow/cc/saved_model/util.h"  // saved_model::GetInputValues
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor.pb.h"
#include "tensorflow/core/framework/types.h"
#include "tensorflow/core/protobuf/meta_graph.pb.h"
#include "tensorflow/core/public/session.h"
#include "tensorflow/core/public/session_options.h"

namespace {

// tag_constants.h / signature_constants.h are NOT shipped in the pip wheel.
constexpr char kServeTag[] = "serve";
constexpr char kDefaultServingSignatureDefKey[] = "serving_default";

using google::protobuf::io::CodedInputStream;
using google::protobuf::io::CodedOutputStream;
using google::protobuf::io::StringOutputStream;
using google::protobuf::internal::WireFormatLite;

struct Request {
  std::string model_name;
  std::string signature_name;
  google::protobuf::Map<std::string, tensorflow::TensorProto> inputs;
  std::vector<std::string> output_filter;
};

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

bool ReadLenDelimited(CodedInputStream* in, std::string* out) {
  uint32_t len;
  return in->ReadVarint32(&len) && in->ReadString(out, static_cast<int>(len));
}

bool ParseModelSpec(const std::string& bytes, Request* req) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                      static_cast<int>(bytes.size()));
  while (uint32_t tag = in.ReadTag()) {
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    const auto wt = WireFormatLite::GetTagWireType(tag);
    if (field == 1 && wt == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      if (!ReadLenDelimited(&in, &req->model_name)) return false;
    } else if (field == 3 && wt == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      if (!ReadLenDelimited(&in, &req->signature_name)) return false;
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
  return in.ConsumedEntireMessage();
}

bool ParseMapEntry(const std::string& bytes, Request* req) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                      static_cast<int>(bytes.size()));
  std::string key, value;
  while (uint32_t tag = in.ReadTag()) {
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    const auto wt = WireFormatLite::GetTagWireType(tag);
    if (field == 1 && wt == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      if (!ReadLenDelimited(&in, &key)) return false;
    } else if (field == 2 && wt == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      if (!ReadLenDelimited(&in, &value)) return false;
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
  tensorflow::TensorProto proto;
  if (!proto.ParseFromString(value)) return false;
  req->inputs[key] = std::move(proto);  // last entry wins
  return true;
}

bool ParsePredictRequest(const std::string& bytes, Request* req) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                      static_cast<int>(bytes.size()));
  in.SetRecursionLimit(100);
  while (uint32_t tag = in.ReadTag()) {
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    const auto wt = WireFormatLite::GetTagWireType(tag);
    std::string sub;
    if (wt == WireFormatLite::WIRETYPE_LENGTH_DELIMITED &&
        (field == 1 || field == 2 || field == 3)) {
      if (!ReadLenDelimited(&in, &sub)) return false;
      if (field == 1 && !ParseModelSpec(sub, req)) return false;
      if (field == 2 && !ParseMapEntry(sub, req)) return false;
      if (field == 3) req->output_filter.push_back(sub);
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
  return in.ConsumedEntireMessage();
}

void WriteLenDelimited(CodedOutputStream* out, int field,
                       const std::string& bytes) {
  out->WriteTag(WireFormatLite::MakeTag(
      field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
  out->WriteVarint32(static_cast<uint32_t>(bytes.size()));
  out->WriteString(bytes);
}

// PredictResponse { map<string,TensorProto> outputs = 1; ModelSpec model_spec = 2; }
std::string SerializePredictResponse(
    const Request& req, const std::string& signature_name,
    const std::vector<std::pair<std::string, tensorflow::TensorProto>>& outs) {
  std::string result;
  {
    StringOutputStream sos(&result);
    CodedOutputStream out(&sos);
    for (const auto& [alias, proto] : outs) {
      std::string entry;
      {
        StringOutputStream esos(&entry);
        CodedOutputStream eout(&esos);
        WriteLenDelimited(&eout, 1, alias);
        WriteLenDelimited(&eout, 2, proto.SerializeAsString());
      }
      WriteLenDelimited(&out, 1, entry);
    }
    std::string spec;
    {
      StringOutputStream ssos(&spec);
      CodedOutputStream sout(&ssos);
      if (!req.model_name.empty()) WriteLenDelimited(&sout, 1, req.model_name);
      WriteLenDelimited(&sout, 3, signature_name);
    }
    WriteLenDelimited(&out, 2, spec);
  }
  return result;
}

std::string ShapeString(const tensorflow::Tensor& t) {
  std::string s = "[";
  for (int i = 0; i < t.dims(); ++i) {
    if (i) s += ",";
    s += std::to_string(t.dim_size(i));
  }
  return s + "]";
}

std::string ValuesString(const tensorflow::Tensor& t) {
  std::string s;
  const int64_t n = t.NumElements();
  if (t.dtype() == tensorflow::DT_STRING) {
    auto flat = t.flat<tensorflow::tstring>();
    for (int64_t i = 0; i < n; ++i) {
      if (i) s += "\t";
      s += "\"" + absl::CEscape(std::string(flat(i))) + "\"";
    }
    return s;
  }
  // Numeric / bool: SummarizeValue prints all elements when max_entries >= n;
  // print_v2 style gives nested brackets, so use flat printing instead.
  return t.SummarizeValue(n > 0 ? n : 1, /*print_v2=*/false);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> pos;
  std::string sig_override;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--signature" && i + 1 < argc) {
      sig_override = argv[++i];
    } else {
      pos.push_back(a);
    }
  }
  if (pos.size() < 2 || pos.size() > 3) {
    std::cerr << "usage: " << argv[0]
              << " EXPORT_DIR REQUEST.pb [RESPONSE.pb] [--signature NAME]\n";
    return 1;
  }
  const std::string export_dir = pos[0];

  // ---- 1. Load exactly like TF Serving's SavedModelBundle path. ----------
  tensorflow::SessionOptions session_options;
  tensorflow::RunOptions run_options;
  tensorflow::SavedModelBundle bundle;
  absl::Status st = tensorflow::LoadSavedModel(
      session_options, run_options, export_dir, {kServeTag}, &bundle);
  if (!st.ok()) {
    std::cerr << "LoadSavedModel failed: " << st << "\n";
    return 2;
  }

  // ---- 2. Read the PredictRequest. ---------------------------------------
  std::string req_bytes;
  Request req;
  if (!ReadFile(pos[1], &req_bytes)) {
    std::cerr << "cannot read " << pos[1] << "\n";
    return 3;
  }
  if (!ParsePredictRequest(req_bytes, &req)) {
    std::cerr << "cannot parse PredictRequest from " << pos[1] << "\n";
    return 3;
  }
  std::string sig_name = !sig_override.empty() ? sig_override
                         : !req.signature_name.empty()
                             ? req.signature_name
                             : std::string(kDefaultServingSignatureDefKey);

  // ---- 3. Signature lookup, alias -> tensor name mapping. -----------------
  const auto& sigs = bundle.meta_graph_def.signature_def();
  auto sig_it = sigs.find(sig_name);
  if (sig_it == sigs.end()) {
    std::cerr << "signature not found: " << sig_name << "; available:";
    for (const auto& kv : sigs) std::cerr << " " << kv.first;
    std::cerr << "\n";
    return 3;
  }
  const tensorflow::SignatureDef& sig = sig_it->second;
  for (const auto& kv : req.inputs) {
    if (!sig.inputs().contains(kv.first)) {
      std::cerr << "input alias not in signature '" << sig_name
                << "': " << kv.first << "\n";
      return 3;
    }
  }
  // GetInputValues: alias -> TensorInfo.name, TensorProto -> Tensor, and fills
  // missing inputs from SignatureDef.defaults (errors if neither is present).
  std::vector<std::pair<std::string, tensorflow::Tensor>> feeds;
  st = tensorflow::saved_model::GetInputValues(sig, req.inputs, feeds);
  if (!st.ok()) {
    std::cerr << "GetInputValues failed: " << st << "\n";
    return 3;
  }
  for (const auto& [name, tensor] : feeds) {
    // dtype check against the signature (TF Serving rejects mismatches too).
    for (const auto& [alias, info] : sig.inputs()) {
      if (info.name() == name && info.dtype() != tensor.dtype()) {
        std::cerr << "dtype mismatch for input '" << alias << "': expected "
                  << tensorflow::DataTypeString(info.dtype()) << ", got "
                  << tensorflow::DataTypeString(tensor.dtype()) << "\n";
        return 3;
      }
    }
  }

  std::vector<std::string> out_aliases;
  if (!req.output_filter.empty()) {
    out_aliases = req.output_filter;
  } else {
    for (const auto& kv : sig.outputs()) out_aliases.push_back(kv.first);
  }
  std::sort(out_aliases.begin(), out_aliases.end());
  std::vector<std::string> fetch_names;
  for (const auto& alias : out_aliases) {
    auto it = sig.outputs().find(alias);
    if (it == sig.outputs().end()) {
      std::cerr << "output alias not in signature '" << sig_name
                << "': " << alias << "\n";
      return 3;
    }
    fetch_names.push_back(it->second.name());
  }

  // ---- 4. Run. -----------------------------------------------------------
  std::vector<tensorflow::Tensor> outputs;
  st = bundle.session->Run(run_options, feeds, fetch_names, {}, &outputs,
                           nullptr);
  if (!st.ok()) {
    std::cerr << "Session::Run failed: " << st << "\n";
    return 4;
  }

  std::vector<std::pair<std::string, tensorflow::TensorProto>> out_protos;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const tensorflow::Tensor& t = outputs[i];
    std::cout << out_aliases[i] << "\t" << tensorflow::DataTypeString(t.dtype())
              << "\t" << ShapeString(t) << "\t" << ValuesString(t) << "\n";
    tensorflow::TensorProto p;
    t.AsProtoField(&p);  // TF Serving's default (non tensor_content) encoding
    out_protos.emplace_back(out_aliases[i], std::move(p));
  }

  if (pos.size() == 3) {
    std::ofstream f(pos[2], std::ios::binary | std::ios::trunc);
    f << SerializePredictResponse(req, sig_name, out_protos);
    if (!f) {
      std::cerr << "cannot write " << pos[2] << "\n";
      return 4;
    }
  }
  return 0;
}
