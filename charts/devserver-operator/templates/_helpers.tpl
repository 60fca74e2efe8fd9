{{/* The chart's name, and the full name the objects of a release carry. */}}
{{- define "devserver-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "devserver-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "devserver-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "devserver-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The same labels as the kustomize manifests, plus the two only Helm sets. */}}
{{- define "devserver-operator.labels" -}}
{{ include "devserver-operator.selectorLabels" . }}
app.kubernetes.io/part-of: devserver
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "devserver-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "devserver-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Name of the operator's (Cluster)Role: not the TeamAccess role "devserver-operator". */}}
{{- define "devserver-operator.roleName" -}}
{{- printf "%s-manager" (include "devserver-operator.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "devserver-operator.peering" -}}
{{- if gt (int .Values.replicas) 1 }}true{{ end -}}
{{- end -}}

{{- define "devserver-operator.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The admission webhook's Service, ValidatingWebhookConfiguration and (Cluster)Role. */}}
{{- define "devserver-operator.admissionName" -}}
{{- printf "%s-admission" (include "devserver-operator.fullname" . | trunc 53 | trimSuffix "-") -}}
{{- end -}}

{{/* The Secret with the webhook's CA and serving certificate: the operator creates it. */}}
{{- define "devserver-operator.admissionSecret" -}}
{{- printf "%s-tls" (include "devserver-operator.admissionName" .) -}}
{{- end -}}
