package deploy

// Item identifies an item of the deployment checklist or of the completion
// criteria. The text of each item is the checklist document's, word for word.
type Item string

// Pre-Deployment items.
const (
	ItemTestsPassing     Item = "All tests passing in CI"
	ItemCodeReviewed     Item = "Code reviewed and approved"
	ItemMigrationsTested Item = "Database migrations tested (if applicable)"
	ItemFlagsConfigured  Item = "Feature flags configured (if applicable)"
	ItemRollbackPlan     Item = "Rollback plan documented"
	ItemOnCallNotified   Item = "On-call/support notified (if applicable)"
	ItemStagingFirst     Item = "Deploy to staging first (if available)"
	ItemStagingVerified  Item = "Verify staging deployment"
	ItemProduction       Item = "Deploy to production"
	ItemMonitorDeploy    Item = "Monitor deployment process"
	ItemFeatureWorks     Item = "Verify feature works in production"
	ItemNoNewErrors      Item = "Check error logs for new errors"
	ItemPerformance      Item = "Verify performance metrics"
	ItemMonitoringActive Item = "Confirm monitoring/alerting active"
	ItemTicketUpdated    Item = "Update issue/ticket status"
	ItemStakeholders     Item = "Notify stakeholders"
	ItemDeploymentNotes  Item = "Document deployment notes"
	ItemDeploySuccessful Item = "Deployment successful"
	ItemFeatureVerified  Item = "Feature verified in production"
	ItemNoErrorsObserved Item = "No new errors observed"
	ItemPerformanceOK    Item = "Performance acceptable"
	ItemStakeholdersTold Item = "Stakeholders notified"
	ItemWorkflowComplete Item = "Workflow state marked complete"
	sectionPre                = "Pre-Deployment"
	sectionDuring             = "During Deployment"
	sectionPost               = "Post-Deployment"
	sectionCommunication      = "Communication"
	sectionCompletion         = "Completion Criteria"
)

// ChecklistSection is a titled group of checklist items.
type ChecklistSection struct {
	Title string
	Items []Item
}

// Checklist returns the deployment checklist and the completion criteria, in
// the order of the checklist document.
func Checklist() []ChecklistSection {
	return []ChecklistSection{
		{sectionPre, []Item{ItemTestsPassing, ItemCodeReviewed, ItemMigrationsTested, ItemFlagsConfigured, ItemRollbackPlan, ItemOnCallNotified}},
		{sectionDuring, []Item{ItemStagingFirst, ItemStagingVerified, ItemProduction, ItemMonitorDeploy}},
		{sectionPost, []Item{ItemFeatureWorks, ItemNoNewErrors, ItemPerformance, ItemMonitoringActive}},
		{sectionCommunication, []Item{ItemTicketUpdated, ItemStakeholders, ItemDeploymentNotes}},
		{sectionCompletion, []Item{ItemDeploySuccessful, ItemFeatureVerified, ItemNoErrorsObserved, ItemPerformanceOK, ItemStakeholdersTold, ItemWorkflowComplete}},
	}
}

// ChecklistLine is one checklist item in a report: ticked with its evidence,
// or unticked when nobody checked it.
type ChecklistLine struct {
	Section  string
	Item     Item
	Done     bool
	Evidence string
}
