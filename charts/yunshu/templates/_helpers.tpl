{{/*
Chart name, truncated to the 63 characters Kubernetes allows in names.
*/}}
{{- define "yunshu.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: the release name, plus the chart name unless the
release name already contains it.
*/}}
{{- define "yunshu.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "yunshu.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels that select this release's pods; never change them after install
(a Deployment's selector is immutable). Quoted: a release named "y" or "on"
would otherwise be read as a YAML boolean.
*/}}
{{- define "yunshu.selectorLabels" -}}
app.kubernetes.io/name: {{ include "yunshu.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{/*
Common labels of every resource.
*/}}
{{- define "yunshu.labels" -}}
helm.sh/chart: {{ include "yunshu.chart" . }}
{{ include "yunshu.selectorLabels" . }}
app.kubernetes.io/version: {{ include "yunshu.version" . | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: yunshu
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The image tag: image.tag, or the chart's appVersion.
*/}}
{{- define "yunshu.version" -}}
{{- .Values.image.tag | default .Chart.AppVersion | toString | trunc 63 }}
{{- end }}

{{- define "yunshu.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/*
Whether the release runs more than one replica (PodDisruptionBudget, spreading).
*/}}
{{- define "yunshu.replicated" -}}
{{- if gt (int .Values.replicaCount) 1 }}true{{ end }}
{{- end }}

{{/*
Name of the PVC holding the redb file.
*/}}
{{- define "yunshu.pvcName" -}}
{{- .Values.store.redb.persistence.existingClaim | default (printf "%s-data" (include "yunshu.fullname" .)) }}
{{- end }}

{{/*
The --store argument: etcd://host:port[,host:port…][/namespace], or redb.
*/}}
{{- define "yunshu.storeArg" -}}
{{- if eq .Values.store.mode "etcd" }}
{{- $ns := .Values.store.etcd.namespace | default "" | toString | trimAll "/" }}
{{- printf "%s://%s" (ternary "etcds" "etcd" .Values.store.etcd.tls.enabled) (join "," .Values.store.etcd.endpoints) }}{{ if $ns }}/{{ $ns }}{{ end }}
{{- else }}redb{{ end }}
{{- end }}

{{/*
Refuses (helm fail) values that cannot work. Rendered from the Deployment, so
`helm install`, `helm template` and `helm lint` all stop on them.
*/}}
{{- define "yunshu.validate" -}}
{{- $mode := .Values.store.mode | toString }}
{{- if not (has $mode (list "etcd" "redb")) }}
{{- fail (printf "store.mode must be \"etcd\" or \"redb\", not %q" $mode) }}
{{- end }}
{{- if lt (int .Values.replicaCount) 0 }}
{{- fail "replicaCount must not be negative" }}
{{- end }}
{{- if and (eq $mode "redb") (gt (int .Values.replicaCount) 1) }}
{{- fail (printf "store.mode=redb supports exactly one replica (the redb file is locked by one process), but replicaCount=%d: set replicaCount=1, or use store.mode=etcd for several replicas" (int .Values.replicaCount)) }}
{{- end }}
{{- if eq $mode "etcd" }}
{{- if empty .Values.store.etcd.endpoints }}
{{- fail "store.mode=etcd needs at least one endpoint in store.etcd.endpoints (host:port)" }}
{{- end }}
{{- range .Values.store.etcd.endpoints }}
{{- if not (regexMatch "^[^/,\\s]+:[0-9]{1,5}$" (toString .)) }}
{{- fail (printf "store.etcd.endpoints: %q must be host:port, without a scheme (e.g. etcd-client:2379)" (toString .)) }}
{{- end }}
{{- end }}
{{- if and .Values.store.etcd.tls.enabled (not .Values.store.etcd.tls.existingSecret) }}
{{- fail "store.etcd.tls.enabled needs store.etcd.tls.existingSecret: the Secret with etcd's CA (and the client certificate and key)" }}
{{- end }}
{{- if and .Values.store.etcd.auth.user (not .Values.store.etcd.tls.enabled) }}
{{- fail "store.etcd.auth.user needs store.etcd.tls.enabled: the password would cross the network in clear" }}
{{- end }}
{{- if and .Values.store.etcd.auth.user (not .Values.store.etcd.auth.existingSecret) }}
{{- fail "store.etcd.auth.user needs store.etcd.auth.existingSecret: the Secret with the user's password" }}
{{- end }}
{{- end }}
{{- if not (has (toString .Values.tls.mode) (list "controllerCa" "secret" "off")) }}
{{- fail (printf "tls.mode must be \"controllerCa\", \"secret\" or \"off\", not %q" (toString .Values.tls.mode)) }}
{{- end }}
{{- if not (has (toString .Values.logFormat) (list "json" "human")) }}
{{- fail (printf "logFormat must be \"json\" or \"human\", not %q" (toString .Values.logFormat)) }}
{{- end }}
{{- end }}

{{/*
The names of the API's certificate with tls.mode=controllerCa: the Service in
every form a client in the cluster may use, then tls.extraNames.
*/}}
{{- define "yunshu.tlsNames" -}}
{{- $svc := include "yunshu.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $names := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) -}}
{{- join "," (concat $names .Values.tls.extraNames) -}}
{{- end }}

{{/*
The Secret holding the /metrics scrape token (serviceMonitor.enabled).
*/}}
{{- define "yunshu.metricsTokenSecret" -}}
{{- .Values.serviceMonitor.tokenSecret | default (printf "%s-metrics-token" (include "yunshu.fullname" .)) -}}
{{- end }}
